// HttpServer: cpp-httplib's Server with a deadline per request and limits
// on open connections. Internal to serve/ (server.cc); docs/security.md has
// the limits from the operator's side.
//
// Why: cpp-httplib 0.11 runs each connection on one thread of a fixed pool
// for as long as it stays open, and its read timeout applies per read(), so
// a client that sends one byte every few seconds holds a thread forever and
// `threads` such clients stop the server. The library's extension points
// are enough to fix this without patching it:
//
//   - new_task_queue returns a queue that runs httplib's accept-loop task
//     inline, on the accept thread. That task calls the virtual
//     process_and_close_socket(sock), which HttpServer overrides (as
//     httplib's own SSLServer does) to admit or refuse the connection there:
//     over `max_connections` open connections it answers 503, over
//     `max_per_client` from one remote IP 429, without reading the request
//     and without a worker.
//   - An admitted connection gets its own connection thread (a pool that
//     grows up to max_connections and is joined on stop), so slow clients
//     hold cheap blocked threads, never the request workers; the work of
//     the handlers is bounded separately (Server's `threads`).
//   - The connection thread runs httplib's request parser (the protected
//     process_request) over a DeadlineStream: every read waits at most
//     min(read_timeout, time left until the request's deadline). The
//     deadline is request_timeout after the server starts waiting for the
//     request (accept, or the end of the previous answer on a keep-alive
//     connection); headers or a body still incomplete then fail the read,
//     the answer is 408 (see RequestExpired) and the connection is closed
//     (httplib's parser answers nothing to a request line that never
//     ended: that connection is just closed). Writing the answer has its
//     own budget of request_timeout. An idle keep-alive connection is
//     closed after idle_timeout.
//
// Thread safety: as httplib::Server (configure, then listen on one thread;
// stop() from any). RequestExpired() is called from handlers.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace vitrine {

// The server's connection limits, fixed at construction (docs/security.md).
struct HttpServerOptions {
  std::chrono::milliseconds request_timeout{10000};  // whole request, first byte to last
  std::chrono::milliseconds idle_timeout{5000};      // keep-alive wait for the next request
  std::chrono::milliseconds read_timeout{5000};      // one read
  std::chrono::milliseconds write_timeout{5000};     // one write
  int max_connections = 128;                         // open connections; more get 503
  int max_per_client = 16;                           // per remote IP; more get 429; 0 = no limit
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(HttpServerOptions limits);
  ~HttpServer() override;

  // True inside a handler or error handler when the current request's
  // deadline passed while it was being read (httplib then reports a 400;
  // the error handler turns it into 408).
  static bool RequestExpired();
  // Called from a handler (or the pre-routing handler) of the current
  // request: close the connection after its answer. For answers given
  // before the body was read, whose unread bytes would otherwise be parsed
  // as the next request.
  static void CloseAfterThisResponse();

  int64_t open_connections() const;
  int64_t refused_connections() const;  // 503s and 429s so far

 private:
  class Pool;  // the connection threads

  // Runs on the accept thread: admits (hands to the pool) or refuses.
  bool process_and_close_socket(socket_t sock) override;
  void Serve(socket_t sock);  // on a connection thread
  void Release(const std::string& ip);

  const HttpServerOptions limits_;
  std::unique_ptr<Pool> pool_;
  mutable std::mutex mu_;  // guards the counters below
  int64_t open_ = 0;
  int64_t refused_ = 0;
  std::unordered_map<std::string, int> per_ip_;
};

}  // namespace vitrine
