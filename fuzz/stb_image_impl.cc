// stb_image compiled into the image harness from Debian's header (libstb-dev,
// the same version as the libstb.so the product links). The executable's
// definitions take precedence over the shared library's, so
// embed/visual_encoder.cc's stbi_load lands here: instrumented for coverage
// and ASan, which a prebuilt libstb.so is not.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
