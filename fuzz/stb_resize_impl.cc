// stb_image_resize compiled into the image harness like stb_image_impl.cc,
// with ASan but without coverage instrumentation (see fuzz/CMakeLists.txt):
// resampling a decoded 10000-pixel-wide image runs the comparison hooks
// millions of times and took the harness from hundreds of inputs per second
// to 3, while its paths depend only on the image size, not on the file.
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
