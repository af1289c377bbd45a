// Array formats: .npy (round trips, headers laid out as numpy writes them,
// rejection of what we do not read), .fvecs/.ivecs, IDX (plain and gzip, and
// the real Fashion-MNIST test set). Every rejection must name the file and
// say what was expected.
#include "core/array_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include "core/file_util.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// An .npy file laid out the way numpy.save does it: magic, version, little-
// endian header length (2 bytes for v1, 4 for v2/v3), the dict padded with
// spaces and a final '\n' so the data starts on a multiple of `align` (64 in
// numpy >= 1.14, 16 before).
std::string MakeNpy(const std::string& dict, const std::string& data, int major = 1,
                    size_t align = 64) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  const size_t unpadded = prefix + header.size() + 1;
  header.append((align - unpadded % align) % align, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const size_t len = header.size();
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  if (major != 1) {
    out.push_back(static_cast<char>((len >> 16) & 0xff));
    out.push_back(static_cast<char>((len >> 24) & 0xff));
  }
  return out + header + data;
}

class ArrayIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / (std::string("vitrine_array_io_") + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `bytes` to dir_/name, reads it back as float32 .npy, and returns
  // the error message (and checks it names the file).
  std::string NpyF32Error(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_ / name;
    WriteText(p, bytes);
    auto r = ReadNpyF32(p);
    EXPECT_FALSE(r.ok()) << name;
    if (r.ok()) return "";
    const std::string msg = r.status().message();
    EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
    return msg;
  }

  fs::path dir_;
};

// ---------------------------------------------------------------- .npy

TEST_F(ArrayIoTest, NpyFloat32RoundTrip) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  Matrix m(7, 5);
  for (float& x : m.data) x = dist(rng);
  m.at(0, 0) = std::numeric_limits<float>::infinity();
  m.at(0, 1) = -0.0f;
  m.at(0, 2) = std::numeric_limits<float>::denorm_min();
  const fs::path p = dir_ / "m.npy";
  ASSERT_TRUE(WriteNpy(p, m).ok());
  auto r = ReadNpyF32(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 7u);
  EXPECT_EQ(r->cols, 5u);
  EXPECT_EQ(Bytes(r->data), Bytes(m.data));  // bit-exact

  // The file is byte-for-byte what numpy.save writes for this array.
  EXPECT_EQ(Slurp(p),
            MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (7, 5), }", Bytes(m.data)));
}

TEST_F(ArrayIoTest, NpyInt64RoundTrips) {
  MatrixI64 m(3, 2);
  m.data = {0,  -1,       std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
            42, 1LL << 40};
  ASSERT_TRUE(WriteNpy(dir_ / "a.npy", m).ok());
  auto r = ReadNpyI64(dir_ / "a.npy");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 3u);
  EXPECT_EQ(r->cols, 2u);
  EXPECT_EQ(r->data, m.data);

  // 1-D arrays, laid out as numpy writes them.
  const std::vector<int64_t> v = {5, 4, 3, 2, 1};
  WriteText(dir_ / "v.npy",
            MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", Bytes(v)));
  auto r1 = ReadNpyI64(dir_ / "v.npy");
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->rows, 5u);  // 1-D reads as n x 1
  EXPECT_EQ(r1->cols, 1u);
  EXPECT_EQ(r1->data, v);

  const std::vector<float> f = {1.5f, -2.5f};
  WriteText(dir_ / "f.npy",
            MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", Bytes(f)));
  auto rf = ReadNpyF32(dir_ / "f.npy");
  ASSERT_TRUE(rf.ok());
  EXPECT_EQ(rf->rows, 2u);
  EXPECT_EQ(rf->data, f);

  // Zero rows is a valid array.
  ASSERT_TRUE(WriteNpy(dir_ / "empty.npy", Matrix(0, 8)).ok());
  auto re = ReadNpyF32(dir_ / "empty.npy");
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  EXPECT_EQ(re->rows, 0u);
  EXPECT_EQ(re->cols, 8u);
}

TEST_F(ArrayIoTest, NpyHeadersAsNumpyWritesThem) {
  const std::vector<float> data = {1, 2, 3, 4, 5, 6};
  struct Case {
    std::string dict;
    int major;
    size_t align;
    size_t rows, cols;
  };
  const std::vector<Case> cases = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 64, 2, 3},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 16, 2, 3},  // numpy<1.14
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 1, 64, 6, 1},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 2, 64, 3, 2},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 3, 64, 3, 2},
      {"{'descr':'<f4','fortran_order':False,'shape':(1,6)}", 1, 64, 1, 6},  // no spaces
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dict + " v" + std::to_string(c.major));
    WriteText(dir_ / "h.npy", MakeNpy(c.dict, Bytes(data), c.major, c.align));
    auto r = ReadNpyF32(dir_ / "h.npy");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->rows, c.rows);
    EXPECT_EQ(r->cols, c.cols);
    EXPECT_EQ(r->data, data);
  }
}

TEST_F(ArrayIoTest, NpyRejections) {
  const std::string f4x6 = Bytes(std::vector<float>(6, 1.0f));
  auto dict = [](const std::string& descr, const std::string& fortran, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  };
  std::string msg;

  msg = NpyF32Error("f8.npy", MakeNpy(dict("<f8", "False", "(2, 3)"), f4x6 + f4x6));
  EXPECT_NE(msg.find("dtype '<f8', expected '<f4' (float32)"), std::string::npos) << msg;

  msg = NpyF32Error("be.npy", MakeNpy(dict(">f4", "False", "(2, 3)"), f4x6));
  EXPECT_NE(msg.find("dtype '>f4', expected '<f4'"), std::string::npos) << msg;

  msg = NpyF32Error("fortran.npy", MakeNpy(dict("<f4", "True", "(2, 3)"), f4x6));
  EXPECT_NE(msg.find("Fortran-order array, expected C order"), std::string::npos) << msg;

  msg = NpyF32Error("3d.npy", MakeNpy(dict("<f4", "False", "(1, 2, 3)"), f4x6));
  EXPECT_NE(msg.find("3-D array, expected 1-D or 2-D"), std::string::npos) << msg;

  msg = NpyF32Error("scalar.npy", MakeNpy(dict("<f4", "False", "()"), f4x6.substr(0, 4)));
  EXPECT_NE(msg.find("0-D array, expected 1-D or 2-D"), std::string::npos) << msg;

  msg = NpyF32Error("short.npy", MakeNpy(dict("<f4", "False", "(2, 3)"), f4x6.substr(0, 20)));
  EXPECT_NE(msg.find("truncated: expected 24 data bytes for shape (2, 3), found 20"),
            std::string::npos)
      << msg;

  msg = NpyF32Error("long.npy", MakeNpy(dict("<f4", "False", "(2, 3)"), f4x6 + "xy"));
  EXPECT_NE(msg.find("2 trailing bytes"), std::string::npos) << msg;

  std::string bad_magic = MakeNpy(dict("<f4", "False", "(2, 3)"), f4x6);
  bad_magic[1] = 'M';
  msg = NpyF32Error("magic.npy", bad_magic);
  EXPECT_NE(msg.find("not a .npy file (bad magic"), std::string::npos) << msg;

  msg = NpyF32Error("cut_header.npy", MakeNpy(dict("<f4", "False", "(2, 3)"), "").substr(0, 40));
  EXPECT_NE(msg.find("truncated .npy header"), std::string::npos) << msg;

  msg = NpyF32Error("v9.npy", MakeNpy(dict("<f4", "False", "(2, 3)"), f4x6, 9));
  EXPECT_NE(msg.find(".npy format version 9 (expected 1, 2 or 3)"), std::string::npos) << msg;

  msg = NpyF32Error("nodescr.npy", MakeNpy("{'fortran_order': False, 'shape': (2, 3), }", f4x6));
  EXPECT_NE(msg.find("no 'descr'"), std::string::npos) << msg;

  // A header whose shape multiplies past 2^64 must not wrap around to a
  // small size and be accepted.
  msg = NpyF32Error("huge.npy",
                    MakeNpy(dict("<f4", "False", "(4611686018427387904, 4)"), std::string()));
  EXPECT_NE(msg.find("shape (4611686018427387904, 4) is too large"), std::string::npos) << msg;
  msg = NpyF32Error("neg.npy", MakeNpy(dict("<f4", "False", "(-2, 3)"), f4x6));
  EXPECT_NE(msg.find("malformed 'shape' (-2, 3)"), std::string::npos) << msg;
  msg = NpyF32Error("digits.npy",
                    MakeNpy(dict("<f4", "False", "(123456789012345678901234, 3)"), f4x6));
  EXPECT_NE(msg.find("out-of-range dimension 123456789012345678901234"), std::string::npos) << msg;

  // int64 reader on a float32 file.
  WriteText(dir_ / "f4.npy", MakeNpy(dict("<f4", "False", "(2, 3)"), f4x6));
  auto r = ReadNpyI64(dir_ / "f4.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("f4.npy: dtype '<f4', expected '<i8' (int64)"),
            std::string::npos)
      << r.status().message();

  // Missing file.
  auto missing = ReadNpyF32(dir_ / "nope.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.npy"), std::string::npos);
}

// ---------------------------------------------------------------- .fvecs / .ivecs

TEST_F(ArrayIoTest, VecsRoundTrip) {
  Matrix m(4, 3);
  std::iota(m.data.begin(), m.data.end(), -2.5f);
  ASSERT_TRUE(WriteFvecs(dir_ / "a.fvecs", m).ok());
  EXPECT_EQ(fs::file_size(dir_ / "a.fvecs"), 4u * (4 + 3 * 4));
  auto r = ReadFvecs(dir_ / "a.fvecs");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 4u);
  EXPECT_EQ(r->cols, 3u);
  EXPECT_EQ(r->data, m.data);

  // Independent layout check: row 2 starts with int32 3 then its floats.
  const std::string bytes = Slurp(dir_ / "a.fvecs");
  int32_t d = 0;
  float x = 0;
  std::memcpy(&d, bytes.data() + 2 * 16, 4);
  std::memcpy(&x, bytes.data() + 2 * 16 + 4, 4);
  EXPECT_EQ(d, 3);
  EXPECT_EQ(x, m.at(2, 0));

  DenseMatrix<int32_t> g(2, 5);
  std::iota(g.data.begin(), g.data.end(), 100);
  g.at(1, 4) = -1;
  ASSERT_TRUE(WriteIvecs(dir_ / "g.ivecs", g).ok());
  auto ri = ReadIvecs(dir_ / "g.ivecs");
  ASSERT_TRUE(ri.ok());
  EXPECT_EQ(ri->rows, 2u);
  EXPECT_EQ(ri->cols, 5u);
  EXPECT_EQ(ri->data, g.data);

  // ReadVectors dispatches on the extension.
  auto rv = ReadVectors(dir_ / "a.fvecs");
  ASSERT_TRUE(rv.ok());
  EXPECT_EQ(rv->data, m.data);
}

TEST_F(ArrayIoTest, VecsRejections) {
  Matrix m(3, 4, 1.0f);
  ASSERT_TRUE(WriteFvecs(dir_ / "a.fvecs", m).ok());
  std::string bytes = Slurp(dir_ / "a.fvecs");

  WriteText(dir_ / "trunc.fvecs", bytes.substr(0, bytes.size() - 3));
  auto r = ReadFvecs(dir_ / "trunc.fvecs");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("trunc.fvecs: truncated: size 57 is not a multiple of the "
                                      "row size 20 (d=4)"),
            std::string::npos)
      << r.status().message();

  // Row 1 claims dimension 5 (file size still a multiple of the row size).
  std::string odd = bytes;
  const int32_t five = 5;
  std::memcpy(odd.data() + 20, &five, 4);
  WriteText(dir_ / "odd.fvecs", odd);
  r = ReadFvecs(dir_ / "odd.fvecs");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("odd.fvecs: row 1: dimension 5, expected 4"),
            std::string::npos)
      << r.status().message();

  std::string zero = bytes;
  std::memset(zero.data(), 0, 4);
  WriteText(dir_ / "zero.ivecs", zero);
  auto ri = ReadIvecs(dir_ / "zero.ivecs");
  ASSERT_FALSE(ri.ok());
  EXPECT_NE(ri.status().message().find("zero.ivecs: row 0: dimension 0 out of range"),
            std::string::npos)
      << ri.status().message();

  WriteText(dir_ / "tiny.fvecs", "ab");
  r = ReadFvecs(dir_ / "tiny.fvecs");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tiny.fvecs: truncated"), std::string::npos);
}

// ---------------------------------------------------------------- IDX

IdxArray SampleIdx() {
  IdxArray a;
  a.dims = {5, 2, 3};
  a.data = MatrixU8(5, 6);
  for (size_t i = 0; i < a.data.data.size(); ++i) a.data.data[i] = static_cast<uint8_t>(i * 37);
  return a;
}

TEST_F(ArrayIoTest, IdxRoundTripPlainAndGzip) {
  const IdxArray a = SampleIdx();
  for (bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    const fs::path p = dir_ / (gzip ? "x-idx3-ubyte.gz" : "x-idx3-ubyte");
    ASSERT_TRUE(WriteIdx(p, a, gzip).ok());
    const std::string raw = Slurp(p);
    if (gzip) {
      EXPECT_EQ(raw.substr(0, 2), "\x1f\x8b");
    } else {
      // Magic 00 00 08 03, then big-endian 5, 2, 3, then the bytes.
      EXPECT_EQ(raw.substr(0, 16), std::string("\0\0\x08\x03\0\0\0\x05\0\0\0\x02\0\0\0\x03", 16));
      EXPECT_EQ(raw.size(), 16u + 30u);
    }
    auto r = ReadIdx(p);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->dims, a.dims);
    EXPECT_EQ(r->data.rows, 5u);
    EXPECT_EQ(r->data.cols, 6u);
    EXPECT_EQ(r->data.data, a.data.data);
    auto v = ReadVectors(p);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->rows, 5u);
    EXPECT_EQ(v->at(4, 5), static_cast<float>(a.data.at(4, 5)));
  }
  IdxArray labels;
  labels.dims = {4};
  labels.data = MatrixU8(4, 1);
  labels.data.data = {9, 0, 3, 255};
  ASSERT_TRUE(WriteIdx(dir_ / "l-idx1-ubyte", labels, false).ok());
  auto rl = ReadIdx(dir_ / "l-idx1-ubyte");
  ASSERT_TRUE(rl.ok());
  EXPECT_EQ(rl->data.cols, 1u);
  EXPECT_EQ(rl->data.data, labels.data.data);

  IdxArray bad = labels;
  bad.dims = {5};
  EXPECT_EQ(WriteIdx(dir_ / "bad", bad, false).code(), Status::Code::kInvalidArgument);
}

TEST_F(ArrayIoTest, IdxRejections) {
  const IdxArray a = SampleIdx();
  ASSERT_TRUE(WriteIdx(dir_ / "p", a, false).ok());
  ASSERT_TRUE(WriteIdx(dir_ / "g.gz", a, true).ok());
  const std::string plain = Slurp(dir_ / "p");
  const std::string gz = Slurp(dir_ / "g.gz");
  auto expect = [&](const std::string& name, const std::string& bytes, const std::string& needle) {
    WriteText(dir_ / name, bytes);
    auto r = ReadIdx(dir_ / name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.status().message().find((dir_ / name).string() + ": " + needle), std::string::npos)
        << r.status().message();
  };
  expect("trunc", plain.substr(0, plain.size() - 1), "truncated: expected 30 data bytes, found 29");
  expect("trail", plain + "z", "trailing bytes: expected 30 data bytes, found 31");
  expect("trunc.gz", gz.substr(0, gz.size() / 2), "truncated or corrupt gzip data");
  expect("header", plain.substr(0, 9), "truncated IDX header");
  expect("magic", "\x01\x02" + plain.substr(2), "not an IDX file (bad magic");
  std::string f32 = plain;
  f32[2] = 0x0D;
  expect("float", f32, "IDX element type 0x0d, only unsigned byte (0x08) is supported");
  std::string nd = plain;
  nd[3] = 0;
  expect("ndim0", nd, "IDX with 0 dimensions (expected 1..4)");
  // Dimensions whose product wraps around 2^64 (65536^4) must not pass the
  // size check.
  std::string huge("\0\0\x08\x04", 4);
  for (int i = 0; i < 4; ++i) huge += std::string("\0\x01\0\0", 4);
  expect("huge", huge, "IDX sizes multiply past 2^64");
}

// The real Fashion-MNIST test set (Debian package dataset-fashion-mnist).
// Oracle values were computed independently with Python's gzip module.
TEST(ArrayIoFashionMnist, ReadsT10k) {
  const fs::path dir = VITRINE_FASHION_MNIST_DIR;
  // scripts/install-deps.sh installs dataset-fashion-mnist: absence is a failure.
  ASSERT_TRUE(fs::exists(dir / "t10k-labels-idx1-ubyte.gz")) << "no Fashion-MNIST in " << dir;
  auto labels = ReadIdx(dir / "t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  EXPECT_EQ(labels->dims, std::vector<uint32_t>{10000});
  ASSERT_EQ(labels->data.rows, 10000u);
  EXPECT_EQ(labels->data.cols, 1u);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : labels->data.data) {
    ASSERT_LE(l, 9);
    ++per_class[l];
  }
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));  // the test set is balanced
  const std::vector<uint8_t> first(labels->data.data.begin(), labels->data.data.begin() + 10);
  EXPECT_EQ(first, (std::vector<uint8_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));

  auto images = ReadIdx(dir / "t10k-images-idx3-ubyte.gz");
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  EXPECT_EQ(images->dims, (std::vector<uint32_t>{10000, 28, 28}));
  ASSERT_EQ(images->data.rows, 10000u);
  ASSERT_EQ(images->data.cols, 784u);
  uint64_t sum = 0;
  for (uint8_t p : images->data.data) sum += p;
  EXPECT_EQ(sum, 573469082u);
  uint64_t sum0 = 0;
  for (size_t j = 0; j < 784; ++j) sum0 += images->data.at(0, j);
  EXPECT_EQ(sum0, 33456u);
  EXPECT_EQ(images->data.at(5, 400), 141);
}

}  // namespace
}  // namespace vitrine
