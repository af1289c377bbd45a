// The server's defences against hostile clients (docs/security.md), each a
// regression test for a hole found in review: a real server on 127.0.0.1,
// real requests, every loop bounded in count and time, no timing asserted.
//
//   - hostile JSON (deep nesting, invalid UTF-8, 1e400, huge echoed values)
//     is a bounded 400, never a crash or a 500;
//   - admin routes need the token; without one only loopback, and Create
//     refuses a network address;
//   - /reload stays inside the bundle root and never shows a path;
//   - POST needs Content-Type application/json (no cross-origin forms);
//   - slow clients are cut at the request deadline and cannot starve the
//     server; connection limits refuse the excess at once.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "core/json_util.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::ServeProcess;
using testing::TestServer;
namespace fs = std::filesystem;

constexpr char kToken[] = "test-token-0123456789abcdef";

// A TCP connection to 127.0.0.1:port from `from` (any 127.x.y.z address is
// this host, so tests can act as several clients).
int Connect(int port, const char* from = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &local.sin_addr);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// Reads until the peer closes, for at most `polls` x 100 ms.
std::string ReadUntilClosed(int fd, int polls = 200) {
  std::string got;
  for (int i = 0; i < polls; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// One raw HTTP exchange: for requests httplib::Client would not send.
std::string RawRequest(int port, const std::string& request, const char* from = "127.0.0.1") {
  const int fd = Connect(port, from);
  if (fd < 0) return "";
  std::string got;
  if (SendAll(fd, request)) got = ReadUntilClosed(fd);
  ::close(fd);
  return got;
}

std::string HttpPost(const std::string& path, const std::string& body,
                     const std::string& extra_headers = "Content-Type: application/json\r\n") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0) return -1;
  return std::atoi(response.c_str() + 9);
}

json BodyOf(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  if (at == std::string::npos) return json();
  return json::parse(response.substr(at + 4), nullptr, false);
}

class ServeSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = new fs::path(MakeTestBundle("serve_security")); }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static ServerOptions Options() {
    ServerOptions o;
    o.bundle = *dir_ / "bundle";
    o.threads = 2;
    return o;
  }
  static std::string Item(int i) {
    auto e = Engine::Open(*dir_ / "bundle");
    return e.ok() ? std::string((*e)->catalog().ids.id(i)) : "";
  }
  static fs::path* dir_;
};
fs::path* ServeSecurityTest::dir_ = nullptr;

// ---- hostile JSON ----

// A 100k-deep value in a field the server quotes in its error ("k" in
// /recommend, "ts" in /events) used to overflow the stack in json::dump and
// kill the process. The real binary, so a crash shows as a dead server.
TEST_F(ServeSecurityTest, DeeplyNestedJsonIsA400NotACrash) {
  ServeProcess server(
      {"--bundle", (*dir_ / "bundle").string(), "--port", "0", "--event-log", "none"});
  ASSERT_GT(server.port(), 0);
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(30, 0);
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string item = Item(1);
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/recommend", "{\"user\": \"u\", \"k\": " + deep + "}"},
           {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": " + deep + "}"},
           {"/recommend", "{\"user\": \"u\", \"k\": " + std::string(100000, '{') + "}"},
           {"/reload", "{\"bundle\": " + deep + "}"}}) {
    auto r = c.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(r) << path << ": no answer (the server died?)";
    EXPECT_EQ(r->status, 400) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find("body: nested deeper than 64 levels at byte "),
              std::string::npos)
        << r->body;
  }
  // Nesting within the limit still gets the field's own error, bounded.
  auto r = c.Post("/recommend",
                  "{\"user\": \"u\", \"k\": " + std::string(60, '[') + std::string(60, ']') + "}",
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("'k' must be an integer in [1, 1000], got an array of 1 value"),
            std::string::npos)
      << r->body;
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  const int status = server.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Error messages quote at most a clipped piece of what the client sent.
TEST_F(ServeSecurityTest, ErrorsQuoteOnlyABoundedPieceOfTheInput) {
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  const std::string big(200000, 'x');
  const std::string item = Item(1);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/recommend", json{{"user", "u"}, {"k", big}}.dump()},
      {"/recommend", json{{"user", "u"}, {big, 1}}.dump()},
      {"/recommend", json{{"user", "u"}, {"weights", {{big, "x"}}}}.dump()},
      {"/recommend", json{{"user", "u"}, {"params", {{big, json::array()}}}}.dump()},
      {"/recommend", json{{"user", "u"}, {"diversity", big}}.dump()},
      {"/recommend", "{\"user\": \"" + big},   // unterminated string
      {"/recommend", "[\"" + big + "\\q\"]"},  // a bad escape at the end of a long string
      {"/recommend", "[1" + std::string(100000, '0') + "e400]"},
      {"/events", json{{"user", "u"}, {"item", item}, {"event", big}}.dump()},
      {"/events", json{{"user", "u"}, {"item", item}, {"ts", big}}.dump()},
  };
  for (const auto& [path, body] : cases) {
    auto r = c.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << Clip(r->body, 300);
    EXPECT_LT(r->body.size(), 400u) << Clip(r->body, 600);
    EXPECT_NE(r->body.find("..."), std::string::npos) << Clip(r->body, 600);
  }
  // A long id in the URL: checked before the engine quotes it.
  auto r = c.Get(("/similar/" + std::string(5000, 'y')).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_LT(r->body.size(), 400u) << Clip(r->body, 600);
  r = c.Get(("/similar/" + item + "?k=" + std::string(5000, '9')).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_LT(r->body.size(), 400u) << Clip(r->body, 600);
}

// Invalid UTF-8 used to become a 500 (nlohmann throws when dumping the
// error that quotes it); 1e400 likewise (an out_of_range, not a
// parse_error). Both are the client's fault: 400.
TEST_F(ServeSecurityTest, InvalidUtf8AndHugeNumbersAre400) {
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  const std::string item = Item(2);
  struct Case {
    std::string path, body, needle;
  };
  const std::vector<Case> cases = {
      {"/recommend", "{\"user\": \"ab\xff\"}", "body is not valid UTF-8 at byte 12"},
      {"/recommend", "{\"user\": \"u\", \"weights\": {\"\xc0\xaf\": 1}}",
       "body is not valid UTF-8 at byte 27"},
      {"/events", "{\"user\": \"\xed\xa0\x80\", \"item\": \"" + item + "\"}",
       "body is not valid UTF-8 at byte 10"},
      {"/recommend", "{\"user\": \"u\", \"k\": 1e400}", "number out of range"},
      {"/recommend", "{\"user\": \"u\", \"weights\": {\"cf\": -1e400}}", "number out of range"},
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": 1e400}",
       "number out of range"},
      {"/recommend", "{\"user\": \"u\", \"weights\": {\"cf\": 1e300}}", "weights.cf must be"},
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": 18446744073709551615}",
       "between 1900-01-01T00:00:00Z and 2200-12-31T23:59:59Z"},
      // In int64 but outside the range `build` reads back from the log.
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": 9223372036854775807}",
       "between 1900-01-01T00:00:00Z and 2200-12-31T23:59:59Z"},
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": -9223372036854775808}",
       "between 1900"},
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": 7289654400}",
       "between 1900"},
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": 1e15}", "between 1900"},
      {"/events", "{\"user\": \"u\", \"item\": \"" + item + "\", \"ts\": \"9999-01-01T00:00:00Z\"}",
       "between 1900"},
  };
  for (const auto& t : cases) {
    auto r = c.Post(t.path.c_str(), t.body, "application/json");
    ASSERT_TRUE(r) << t.body;
    EXPECT_EQ(r->status, 400) << t.body << " -> " << r->body;
    EXPECT_NE(r->body.find(t.needle), std::string::npos) << r->body;
  }
  // A URL that %-decodes to invalid UTF-8.
  for (const std::string& path :
       std::vector<std::string>{"/similar/%FF", "/similar/" + item + "?context.a=%C0%AF"}) {
    auto r = c.Get(path.c_str());
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path << " -> " << r->body;
    EXPECT_NE(r->body.find("not valid UTF-8"), std::string::npos) << r->body;
  }
  EXPECT_EQ(c.Get("/health")->status, 200);
}

// The last timestamps inside the range are taken.
TEST_F(ServeSecurityTest, TimestampsAtTheEdgesOfTheRangeAreTaken) {
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  for (const char* ts : {"7289654399", "-2208988800", "1700000000.5", "\"2200-12-31T23:59:59Z\""}) {
    const std::string body =
        std::string("{\"user\": \"u\", \"item\": \"") + Item(2) + "\", \"ts\": " + ts + "}";
    auto r = c.Post("/events", body, "application/json");
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 200) << body << " -> " << r->body;
  }
}

// The rules parser's depth limit reached through a /recommend body: a
// 10 KB condition of nested parentheses (which crashed the server before
// the limit) is a 400 naming the limit, and the server goes on answering.
TEST_F(ServeSecurityTest, DeeplyNestedRulesInARecommendBodyAreA400) {
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  const std::string nested = "EXCLUDE WHERE " + std::string(5000, '(') + "price > 1" +
                             std::string(5000, ')');
  const std::string nots = "EXCLUDE WHERE " + [] {
    std::string s;
    for (int i = 0; i < 2500; ++i) s += "NOT ";
    return s;
  }() + "price > 1";
  for (const std::string& rules : {nested, nots}) {
    ASSERT_GE(rules.size(), 10000u);
    const std::string body = json{{"user", "u"}, {"rules", rules}}.dump();
    auto r = c.Post("/recommend", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << Clip(r->body, 300);
    EXPECT_NE(r->body.find("nests deeper than 64 levels"), std::string::npos) << Clip(r->body, 300);
    EXPECT_LT(r->body.size(), 600u) << "the error quotes a bounded piece of the rules";
  }
  EXPECT_EQ(c.Get("/health")->status, 200);
}

// ---- access ----

TEST_F(ServeSecurityTest, AdminRoutesNeedTheToken) {
  ServerOptions o = Options();
  o.admin_token = kToken;
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  const std::string event = json{{"user", "u"}, {"item", Item(3)}}.dump();
  for (const char* path : {"/events", "/reload"}) {
    const std::string body = std::string_view(path) == "/events" ? event : "{}";
    auto r = c.Post(path, body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path << " " << r->body;
    EXPECT_NE(r->body.find("needs 'Authorization: Bearer <admin token>'"), std::string::npos);
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
    for (const std::string& wrong :
         std::vector<std::string>{"Bearer nope", std::string("Bearer ") + kToken + "x",
                                  std::string("Bearer ") + std::string(kToken).substr(1),
                                  std::string("Basic ") + kToken}) {
      r = c.Post(path, {{"Authorization", wrong}}, body, "application/json");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 401) << path << " with " << wrong << ": " << r->body;
    }
    r = c.Post(path, {{"Authorization", std::string("Bearer ") + kToken}}, body,
               "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
    // The scheme is case-insensitive.
    r = c.Post(path, {{"Authorization", std::string("bearer ") + kToken}}, body,
               "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
  }
  // Public routes need no token.
  auto r = c.Post("/recommend", json{{"user", "u"}, {"k", 3}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST_F(ServeSecurityTest, WithoutATokenOnlyLoopbackMayUseAdminRoutes) {
  // The library refuses a network address...
  for (const char* host : {"0.0.0.0", "::", "192.0.2.1", "example.com"}) {
    ServerOptions o = Options();
    o.host = host;
    auto s = Server::Create(o);
    ASSERT_FALSE(s.ok()) << host;
    EXPECT_NE(s.status().message().find("without an admin token"), std::string::npos)
        << s.status().message();
  }
  {
    ServerOptions o = Options();
    o.host = "0.0.0.0";
    o.admin_token = "short";
    auto s = Server::Create(o);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find("at least 16 characters"), std::string::npos);
  }
  // ... and so does the CLI, with a clear message and exit code 1 (bounded
  // by `timeout`: a server that started would be killed after 30 s).
  const fs::path out = *dir_ / "refuse.err";
  const std::string cmd = std::string("timeout 30 '") + VITRINE_BINARY + "' serve --bundle '" +
                          (*dir_ / "bundle").string() +
                          "' --host 0.0.0.0 --port 0 --event-log none >/dev/null 2>'" +
                          out.string() + "'";
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1) << Slurp(out);
  EXPECT_NE(Slurp(out).find("refusing to listen on 0.0.0.0 without an admin token"),
            std::string::npos)
      << Slurp(out);

  // On loopback without a token: a request for another host name (a web
  // page that rebound its DNS name to 127.0.0.1) is refused; loopback
  // names are served.
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  const std::string event = json{{"user", "u"}, {"item", Item(3)}}.dump();
  for (const std::string host : {"evil.example", "evil.example:80", "127.0.0.1.evil.example"}) {
    const std::string resp =
        RawRequest(server.port(), "POST /events HTTP/1.1\r\nHost: " + host +
                                      "\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                      "Content-Length: " +
                                      std::to_string(event.size()) + "\r\n\r\n" + event);
    EXPECT_EQ(StatusOf(resp), 403) << host << ": " << resp;
    EXPECT_NE(resp.find("only answers requests for a loopback host"), std::string::npos) << resp;
  }
  for (const std::string host : {"127.0.0.1", "localhost:8080", "[::1]:8080", "127.0.0.1:1"}) {
    const std::string resp =
        RawRequest(server.port(), "POST /events HTTP/1.1\r\nHost: " + host +
                                      "\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                      "Content-Length: " +
                                      std::to_string(event.size()) + "\r\n\r\n" + event);
    EXPECT_EQ(StatusOf(resp), 200) << host << ": " << resp;
  }
  // Public routes answer any Host (a reverse proxy may pass its own).
  const std::string resp = RawRequest(
      server.port(), "GET /health HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(resp), 200) << resp;
}

// The real binary takes the token from a file or the environment, never
// from a flag value.
TEST_F(ServeSecurityTest, TheCliReadsTheTokenFromAFileOrTheEnvironment) {
  const fs::path file = *dir_ / "token";
  std::ofstream(file) << kToken << "\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  const std::string event = json{{"user", "u"}, {"item", Item(4)}}.dump();
  auto check = [&](ServeProcess& server) {
    ASSERT_GT(server.port(), 0);
    httplib::Client c("127.0.0.1", server.port());
    auto r = c.Post("/events", event, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << r->body;
    r = c.Post("/events", {{"Authorization", std::string("Bearer ") + kToken}}, event,
               "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  };
  {
    ServeProcess server({"--bundle", (*dir_ / "bundle").string(), "--port", "0", "--event-log",
                         "none", "--admin-token-file", file.string()});
    check(server);
  }
  ::setenv("VITRINE_ADMIN_TOKEN", kToken, 1);
  {
    ServeProcess server(
        {"--bundle", (*dir_ / "bundle").string(), "--port", "0", "--event-log", "none"});
    ::unsetenv("VITRINE_ADMIN_TOKEN");
    check(server);
  }
  ::unsetenv("VITRINE_ADMIN_TOKEN");
}

// POST /reload {"bundle": P} used to load any directory on the machine and
// answer with the path and the reason it failed.
TEST_F(ServeSecurityTest, ReloadStaysInsideTheBundleRootAndShowsNoPaths) {
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  const fs::path root = server->bundle_root();
  ASSERT_TRUE(fs::exists(root / "bundle")) << root;  // the default: where the bundle lives
  httplib::Client c("127.0.0.1", server.port());
  auto reload = [&](const std::string& path, int* status) {
    auto r = c.Post("/reload", json{{"bundle", path}}.dump(), "application/json");
    *status = r ? r->status : -1;
    return r ? json::parse(r->body, nullptr, false) : json();
  };
  int st;
  std::string refusal;
  for (const std::string& outside :
       {std::string("/etc"), std::string("/no/such/dir"), std::string("/"), (root / "..").string(),
        (root / "bundle/../../x").string(), std::string("../../../etc"), (*dir_).string(),
        root.string() + "-sibling"}) {
    json j = reload(outside, &st);
    EXPECT_EQ(st, 403) << outside << ": " << j.dump();
    // One message for every refusal: it does not tell whether P exists.
    if (refusal.empty()) refusal = j.value("error", "");
    EXPECT_EQ(j.value("error", ""), refusal) << outside;
    EXPECT_EQ(j.dump().find(outside), std::string::npos) << j.dump();
  }
  EXPECT_NE(refusal.find("inside the server's bundle root"), std::string::npos) << refusal;
  // Inside the root but no bundle: 500, the old bundle keeps serving, and
  // the answer names no path (the log has the reason).
  const int64_t g = server->generation();
  for (const std::string& inside : {(root / "no-such-bundle").string(), std::string("missing"),
                                    (root / "bundle" / "vectors").string()}) {
    json j = reload(inside, &st);
    EXPECT_EQ(st, 500) << inside << ": " << j.dump();
    const std::string msg = j.value("error", "");
    EXPECT_EQ(msg, "reload failed (still serving generation " + std::to_string(g) +
                       "); the server log has the reason");
    EXPECT_EQ(msg.find('/'), std::string::npos) << msg;
  }
  // Relative paths are taken from the root; the bundle itself reloads.
  json j = reload("bundle", &st);
  EXPECT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["generation"], g + 1);
  EXPECT_EQ(j["bundle"], "bundle");
  j = reload((root / "bundle").string(), &st);
  EXPECT_EQ(st, 200) << j.dump();
  EXPECT_EQ(server->generation(), g + 2);
  // /health shows the bundle's name, not where it lives.
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(json::parse(h->body)["bundle"], "bundle");
}

// A web page in the operator's browser can POST cross-origin without a CORS
// preflight only as text/plain, a form or multipart: those are 415.
TEST_F(ServeSecurityTest, PostNeedsJsonContentType) {
  TestServer server(Options());
  ASSERT_TRUE(server.ok());
  const std::string body = json{{"user", "u"}, {"k", 2}}.dump();
  for (const std::string type :
       {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/jsonx", "text/json", "application/json-patch+json"}) {
    for (const char* path : {"/recommend", "/events", "/reload"}) {
      const std::string resp =
          RawRequest(server.port(), HttpPost(path, body, "Content-Type: " + type + "\r\n"));
      EXPECT_EQ(StatusOf(resp), 415) << path << " " << type << ": " << resp;
      EXPECT_NE(resp.find("'Content-Type: application/json'"), std::string::npos) << resp;
    }
  }
  // No Content-Type at all (an empty /reload from curl -X POST, or fetch).
  std::string resp = RawRequest(server.port(), HttpPost("/reload", "", ""));
  EXPECT_EQ(StatusOf(resp), 415) << resp;
  EXPECT_NE(resp.find("(got none)"), std::string::npos) << resp;
  for (const std::string type :
       {"application/json", "application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"}) {
    resp =
        RawRequest(server.port(), HttpPost("/recommend", body, "Content-Type: " + type + "\r\n"));
    EXPECT_EQ(StatusOf(resp), 200) << type << ": " << resp;
  }
}

// ---- slow clients and connection limits ----

// 4 x threads connections that each send one header byte every 0.3 s: they
// used to hold every worker (the read timeout is per read), so /health
// waited until they gave up. Now /health is answered while they are still
// sending, and each is cut with a 408 at the request deadline.
TEST_F(ServeSecurityTest, SlowClientsAreCutAtTheDeadlineAndDoNotStarveOthers) {
  ServerOptions o = Options();
  o.threads = 2;
  o.request_timeout = std::chrono::seconds(2);
  o.read_timeout = std::chrono::seconds(5);  // longer than the gap between bytes
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  constexpr int kSlow = 4 * 2;
  constexpr int kMaxBytes = 60;  // 60 x 0.3 s: at most 18 s, whatever the server does
  std::vector<int> fds;
  for (int i = 0; i < kSlow; ++i) {
    const int fd = Connect(server.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
    fds.push_back(fd);
  }
  std::atomic<bool> slow_done{false};
  std::vector<std::string> answers(kSlow);
  std::vector<int> bytes_sent(kSlow, 0);
  std::thread slow([&] {
    std::vector<bool> open(kSlow, true);
    for (int round = 0; round < kMaxBytes; ++round) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      int still_open = 0;
      for (int i = 0; i < kSlow; ++i) {
        if (!open[i]) continue;
        // Whatever the server sent so far; EOF means it cut us.
        pollfd p{fds[i], POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) {
          answers[i] += ReadUntilClosed(fds[i], 20);
          open[i] = false;
          continue;
        }
        if (SendAll(fds[i], "x")) {
          ++bytes_sent[i];
        } else {
          open[i] = false;
        }
        still_open += open[i];
      }
      if (still_open == 0) break;
    }
    slow_done = true;
  });
  // While the slow clients keep sending: /health on a fresh connection.
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(30, 0);
  auto h = c.Get("/health");
  const bool answered_while_slow_clients_sent = !slow_done.load();
  slow.join();
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_TRUE(answered_while_slow_clients_sent);
  for (int i = 0; i < kSlow; ++i) {
    EXPECT_LT(bytes_sent[i], kMaxBytes) << "slow client " << i << " was never cut off";
    EXPECT_EQ(StatusOf(answers[i]), 408) << answers[i];
    EXPECT_NE(answers[i].find("did not arrive in full within 2000 ms"), std::string::npos)
        << answers[i];
  }
  // The server is healthy afterwards.
  EXPECT_EQ(c.Get("/health")->status, 200);
}

// A body trickled in after complete headers is cut the same way.
TEST_F(ServeSecurityTest, ASlowBodyIsCutAtTheDeadline) {
  ServerOptions o = Options();
  o.request_timeout = std::chrono::seconds(1);
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  const int fd = Connect(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd,
                      "POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: 1000\r\n\r\n{"));
  std::string got;
  int sent = 0;
  for (; sent < 50; ++sent) {  // at most 50 x 0.2 s
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      got = ReadUntilClosed(fd, 20);
      break;
    }
    if (!SendAll(fd, " ")) break;
  }
  ::close(fd);
  EXPECT_LT(sent, 50);
  EXPECT_EQ(StatusOf(got), 408) << got;
}

TEST_F(ServeSecurityTest, ConnectionsOverThePerClientLimitAreRefusedAtOnce) {
  ServerOptions o = Options();
  o.max_per_client = 2;
  o.idle_timeout = std::chrono::seconds(30);  // the held connections stay open
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  // Two idle connections from 127.0.0.1 use its quota.
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(Connect(server.port()));
    ASSERT_GE(held.back(), 0);
  }
  // The accept queue is FIFO: the third connection is admitted (or not)
  // after the two held ones.
  const int third = Connect(server.port());
  ASSERT_GE(third, 0);
  const std::string refused = ReadUntilClosed(third);
  ::close(third);
  EXPECT_EQ(StatusOf(refused), 429) << refused;
  EXPECT_NE(refused.find("too many open connections from your address (max 2)"), std::string::npos)
      << refused;
  // Another client is served meanwhile.
  const std::string other = RawRequest(
      server.port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "127.0.0.2");
  EXPECT_EQ(StatusOf(other), 200) << other;
  EXPECT_GE(BodyOf(other)["refused_connections"].get<int>(), 1) << other;
  // Closing the held connections frees the quota (the server notices the
  // close asynchronously: a bounded number of tries).
  for (int fd : held) ::close(fd);
  std::string again;
  for (int i = 0; i < 100 && StatusOf(again) != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    again =
        RawRequest(server.port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }
  EXPECT_EQ(StatusOf(again), 200) << again;
}

TEST_F(ServeSecurityTest, ConnectionsOverTheServerLimitAreRefusedAtOnce) {
  ServerOptions o = Options();
  o.max_connections = 3;
  o.max_per_client = 0;  // no per-client limit
  o.idle_timeout = std::chrono::seconds(30);
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  // Three idle connections (from two addresses) fill the server; the
  // accept queue is FIFO, so the fourth comes after them.
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(Connect(server.port(), i == 0 ? "127.0.0.1" : "127.0.0.2"));
    ASSERT_GE(held.back(), 0);
  }
  const int fourth = Connect(server.port(), "127.0.0.5");
  ASSERT_GE(fourth, 0);
  const std::string refused = ReadUntilClosed(fourth);
  ::close(fourth);
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_NE(refused.find("too many open connections (max 3)"), std::string::npos) << refused;
  for (int fd : held) ::close(fd);
}

}  // namespace
}  // namespace vitrine
