// Fuzzes the HTTP API through a real in-process Server (serve/server.h): the
// tiny bundle (fuzz_util.h TinyBundle), bound to 127.0.0.1 on a free port,
// running on its own thread; each input is one request sent over loopback
// with httplib::Client, so request parsing, JSON body parsing, validation and
// the engine calls behind /recommend, /events, /audience, /reload,
// /similar and /trending all run
// as in production. Slow for a fuzzer (a loopback round trip per input, some
// hundreds of inputs per second, against thousands for the parsers), but it
// exercises the real server code rather than a copy of its validation.
//
// Input: the first line picks the request, the rest is the body:
//   /similar/<item>?<query>   GET of that target (the rest is ignored)
//   /trending?<query>         GET of that target (the rest is ignored)
//   /events                   POST of the rest to /events
//   /audience                 POST of the rest to /audience
//   /reload                   POST of the rest to /reload
//   anything else             POST of the rest to /recommend
// Oracles: the server answers every request within the read timeout, with
// JSON, and with 200, 400, 404 or 413; for /reload also 403 (a path outside
// the bundle root) and 500 (a bundle that fails to open). A 500 anywhere
// else is an exception caught by the handler guard: an input the validation
// let through.
//
// State: /events adds to the session store, so a later /recommend for the
// same user depends on earlier inputs; a crash found here may need the inputs
// before it to replay (libFuzzer's -runs over the crash file alone usually
// suffices, as most handlers are stateless).
#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "fuzz/fuzz_util.h"
#include "serve/server.h"

namespace {

using namespace vitrine;

struct Running {
  std::unique_ptr<Server> server;
  std::thread thread;
  std::unique_ptr<httplib::Client> client;
};

Running* g_running = nullptr;  // never destroyed: the server serves until exit

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  ServerOptions o;
  o.bundle = vitrine::fuzz::TinyBundle("http");
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 2;
  o.session_users = 1000;  // bounded memory over millions of /events inputs
  o.session_events = 20;
  o.max_body_bytes = 16 << 10;  // above -max_len, so 413 needs no giant input
  auto server = Server::Create(o);
  if (!server.ok()) vitrine::fuzz::Fail("Server::Create: " + server.status().ToString());
  auto port = (*server)->Bind();
  if (!port.ok()) vitrine::fuzz::Fail("Server::Bind: " + port.status().ToString());
  g_running = new Running;
  g_running->server = std::move(*server);
  g_running->thread = std::thread([] { (void)g_running->server->Run(); });
  g_running->thread.detach();
  if (!g_running->server->WaitUntilRunning(std::chrono::seconds(30))) {
    vitrine::fuzz::Fail("the server did not start within 30 s");
  }
  g_running->client = std::make_unique<httplib::Client>("127.0.0.1", *port);
  g_running->client->set_keep_alive(true);
  g_running->client->set_read_timeout(std::chrono::seconds(10));
  g_running->client->set_connection_timeout(std::chrono::seconds(10));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string target = input.substr(0, nl);
  const std::string body = nl == std::string::npos ? "" : input.substr(nl + 1);
  httplib::Client& client = *g_running->client;

  const bool get = target.rfind("/similar/", 0) == 0 || target.rfind("/trending", 0) == 0;
  const std::string path =
      get ? target
          : (target == "/events" || target == "/reload" || target == "/audience" ? target
                                                                                 : "/recommend");
  httplib::Result res =
      get ? client.Get(path.c_str()) : client.Post(path.c_str(), body, "application/json");
  if (!res) {
    vitrine::fuzz::Fail("no answer to " + path + ": " + httplib::to_string(res.error()));
  }
  const int status = res->status;
  // 403: a /reload outside the bundle root (by default the directory that
  // holds the tiny bundle), as docs/security.md promises.
  const bool allowed = status == 200 || status == 400 || status == 404 || status == 413 ||
                       ((status == 403 || status == 500) && path == "/reload");
  if (!allowed) {
    vitrine::fuzz::Fail(path + " answered " + std::to_string(status) + ": " + res->body);
  }
  if (nlohmann::json::parse(res->body, nullptr, false).is_discarded()) {
    vitrine::fuzz::Fail(path + " answered " + std::to_string(status) +
                        " with a body that is not JSON: " + res->body.substr(0, 200));
  }
  return 0;
}
