#include "serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>

namespace vitrine {
namespace {

using Clock = std::chrono::steady_clock;

// poll() on one socket until `until`; restarts on EINTR with the time left.
// > 0 ready, 0 timed out, < 0 error.
int PollUntil(int fd, short events, Clock::time_point until) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= until) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

std::string AddressString(const sockaddr_storage& a, int* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
    if (port) *port = ntohs(in.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
    if (port) *port = ntohs(in6.sin6_port);
  }
  return buf;
}

std::string PeerAddress(int fd, int* port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  return AddressString(a, port);
}

std::string LocalAddress(int fd, int* port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  return AddressString(a, port);
}

// An httplib::Stream over a socket whose reads stop at the request's
// deadline (see the header). Buffered, like httplib's SocketStream: the
// request parser reads the request line and headers one byte at a time.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, const HttpServerOptions& limits) : fd_(fd), limits_(limits) {}

  // Waits (at most idle_timeout) for the first byte of the next request; false on
  // a timeout, an error, or when `listener` is closed (the server stops).
  bool WaitForRequest(const std::atomic<socket_t>& listener) {
    if (pos_ < end_) return true;  // pipelined: already buffered
    const auto until = Clock::now() + limits_.idle_timeout;
    while (listener != INVALID_SOCKET) {
      // Short slices, so a stop is noticed promptly.
      const auto slice = std::min(until, Clock::now() + std::chrono::milliseconds(100));
      const int r = PollUntil(fd_, POLLIN, slice);
      if (r > 0) return true;  // data, or EOF that the parser will see
      if (r < 0 || Clock::now() >= until) return false;
    }
    return false;
  }

  void StartRequest(Clock::time_point deadline) {
    deadline_ = deadline;
    expired_ = false;
    write_deadline_.reset();
  }
  bool expired() const { return expired_; }
  void RequestClose() { close_requested_ = true; }
  bool close_requested() const { return close_requested_; }

  bool is_readable() const override { return pos_ < end_ || WaitReadable(); }
  bool is_writable() const override { return WaitWritable(); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == end_) {
      if (!WaitReadable()) return -1;
      ssize_t n;
      do {
        n = ::recv(fd_, buf_, sizeof buf_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      pos_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t k = std::min(size, end_ - pos_);
    std::memcpy(ptr, buf_ + pos_, k);
    pos_ += k;
    return static_cast<ssize_t>(k);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!WaitWritable()) return -1;
    ssize_t n;
    do {
      n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = PeerAddress(fd_, &port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = LocalAddress(fd_, &port);
  }
  socket_t socket() const override { return fd_; }

 private:
  bool WaitReadable() const {
    const auto now = Clock::now();
    if (now >= deadline_) {
      expired_ = true;
      return false;
    }
    const auto until = std::min(deadline_, now + limits_.read_timeout);
    const int r = PollUntil(fd_, POLLIN, until);
    if (r == 0 && until == deadline_) expired_ = true;
    return r > 0;
  }

  bool WaitWritable() const {
    const auto now = Clock::now();
    // The answer's budget starts with its first write, not with the request:
    // a slow handler must not leave it no time to be sent.
    if (!write_deadline_) write_deadline_ = now + limits_.request_timeout;
    const auto until = std::min(*write_deadline_, now + limits_.write_timeout);
    return PollUntil(fd_, POLLOUT, until) > 0;
  }

  const int fd_;
  const HttpServerOptions& limits_;
  Clock::time_point deadline_ = Clock::time_point::max();
  mutable bool expired_ = false;
  bool close_requested_ = false;
  mutable std::optional<Clock::time_point> write_deadline_;
  char buf_[4096];
  size_t pos_ = 0, end_ = 0;
};

thread_local DeadlineStream* t_stream = nullptr;

// Closes a connection whose answer is written: FIN first, then a short
// drain of what the client still sends (bounded: 100 ms, 64 KiB), so the
// close does not turn into a reset that could destroy the answer in the
// client's buffer (the client of a 408 is typically still sending).
void LingeringClose(int fd) {
  ::shutdown(fd, SHUT_WR);
  const auto until = Clock::now() + std::chrono::milliseconds(100);
  char sink[4096];
  for (size_t drained = 0; drained < (64u << 10);) {
    if (PollUntil(fd, POLLIN, until) <= 0) break;
    const ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0) break;  // EOF: the client closed too
    drained += static_cast<size_t>(n);
  }
  ::close(fd);
}

// A canned answer for a refused connection, written without blocking: the
// accept thread must never wait on a client.
void Refuse(int fd, int status, const char* reason, const std::string& message) {
  const std::string body =
      "{\"error\":\"" + message + "\",\"status\":" + std::to_string(status) + "}";
  const std::string text =
      "HTTP/1.1 " + std::to_string(status) + " " + reason +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
  (void)::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  // Drain what already arrived (without waiting), so close() sends FIN
  // rather than a reset that could destroy the answer before it is read.
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  ::close(fd);
}

}  // namespace

// Connection threads: one per open connection, created on demand and kept
// for reuse until Shutdown (at most max_connections exist, because the
// admission counts open connections first).
class HttpServer::Pool {
 public:
  ~Pool() { Shutdown(); }

  void Submit(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    // Each waiting thread takes one job; start a thread for the rest.
    if (waiting_ < jobs_.size()) {
      threads_.emplace_back([this] { Work(); });
    } else {
      cv_.notify_one();
    }
  }

  // Runs the queued jobs to the end and joins every thread.
  void Shutdown() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;  // reusable by the next listen
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++waiting_;
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      --waiting_;
      if (jobs_.empty()) return;  // stopping
      std::function<void()> fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t waiting_ = 0;
  bool stop_ = false;
};

namespace {

// httplib's task queue, run inline on the accept thread: the task is
// process_and_close_socket, i.e. HttpServer's admission, which is quick and
// never blocks. shutdown() (the listener stopped) waits for the connections.
class InlineQueue final : public httplib::TaskQueue {
 public:
  explicit InlineQueue(std::function<void()> on_shutdown) : on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { on_shutdown_(); }

 private:
  std::function<void()> on_shutdown_;
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions limits)
    : limits_(limits), pool_(std::make_unique<Pool>()) {
  new_task_queue = [this] { return new InlineQueue([this] { pool_->Shutdown(); }); };
  // httplib also puts these on every accepted socket (SO_RCVTIMEO and
  // SO_SNDTIMEO); DeadlineStream polls before every read and write anyway.
  set_read_timeout(limits_.read_timeout);
  set_write_timeout(limits_.write_timeout);
  // httplib writes an answer's headers and body separately; with Nagle's
  // algorithm the body then waits for the client's delayed ACK, and every
  // answer on a keep-alive connection took 40 ms more (bench --server, with
  // the server's own histogram at under 0.5 ms). Accepted sockets inherit
  // the listener's TCP_NODELAY on Linux.
  set_tcp_nodelay(true);
}

HttpServer::~HttpServer() { pool_->Shutdown(); }

bool HttpServer::RequestExpired() { return t_stream != nullptr && t_stream->expired(); }

void HttpServer::CloseAfterThisResponse() {
  if (t_stream != nullptr) t_stream->RequestClose();
}

int64_t HttpServer::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

int64_t HttpServer::refused_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  std::string ip = PeerAddress(sock, nullptr);
  int status = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_ >= limits_.max_connections) {
      status = 503;
    } else if (limits_.max_per_client > 0 && per_ip_[ip] >= limits_.max_per_client) {
      status = 429;
    } else {
      ++open_;
      ++per_ip_[ip];
    }
    if (status != 0) {
      ++refused_;
      if (per_ip_[ip] == 0) per_ip_.erase(ip);
    }
  }
  if (status == 503) {
    Refuse(sock, 503, "Service Unavailable",
           "too many open connections (max " + std::to_string(limits_.max_connections) + ")");
    return false;
  }
  if (status == 429) {
    Refuse(sock, 429, "Too Many Requests",
           "too many open connections from your address (max " +
               std::to_string(limits_.max_per_client) + ")");
    return false;
  }
  pool_->Submit([this, sock, ip = std::move(ip)] {
    Serve(sock);
    LingeringClose(sock);
    Release(ip);
  });
  return true;
}

void HttpServer::Serve(socket_t sock) {
  DeadlineStream strm(sock, limits_);
  t_stream = &strm;
  const size_t max_requests = std::max<size_t>(1, keep_alive_max_count_);
  for (size_t n = 0; n < max_requests; ++n) {
    const auto wait_start = Clock::now();
    if (!strm.WaitForRequest(svr_sock_)) break;
    strm.StartRequest(wait_start + limits_.request_timeout);
    const bool last = n + 1 == max_requests || svr_sock_ == INVALID_SOCKET;
    bool closed = false;
    if (!process_request(strm, last, closed, nullptr) || closed || strm.expired() ||
        strm.close_requested()) {
      break;
    }
  }
  t_stream = nullptr;
}

void HttpServer::Release(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  --open_;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
}

}  // namespace vitrine
