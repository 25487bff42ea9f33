#include "pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace refrag {
namespace {

int g_threads = 0;
thread_local bool t_inside = false;  // nested parallel calls run serially instead of deadlocking

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable wake, done;
  const std::function<void(int64_t)>* job = nullptr;
  int64_t ntasks = 0;
  std::atomic<int64_t> next{0};
  int active = 0;        // workers still inside the current job
  uint64_t generation = 0;
  bool stop = false;

  void run_tasks();

  // seen: the generation of the last job this worker ran. A worker started by set_num_threads after
  // earlier jobs begins at the current generation: starting at 0 made it run a pass of its own at once,
  // whose extra `--active` could take `active` to -1 just after a job's 0, so that the caller waited for
  // 0 forever (a hang after setNumThreads(2); setNumThreads(1); ... in a loop, seen in CI).
  void worker(uint64_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
      }
      run_tasks();
      std::lock_guard<std::mutex> lock(mu);
      if (--active == 0) done.notify_one();
    }
  }

  void start(int n) {
    uint64_t g;
    {
      std::lock_guard<std::mutex> lock(mu);
      g = generation;
    }
    for (int i = 0; i < n - 1; i++) workers.emplace_back([this, g] { worker(g); });
  }
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    wake.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
    stop = false;
  }
  ~Pool() { shutdown(); }
};

int default_threads() {
  if (const char* env = std::getenv("REFRAG_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

void Pool::run_tasks() {
  t_inside = true;
  for (;;) {
    int64_t t = next.fetch_add(1);
    if (t >= ntasks) break;
    (*job)(t);
  }
  t_inside = false;
}

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool();
    q->start(default_threads());
    return q;
  }();
  return *p;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  Pool& p = pool();
  p.shutdown();
  p.start(n);
  g_threads = n;
}

int num_threads() {
  if (g_threads == 0) g_threads = static_cast<int>(pool().workers.size()) + 1;
  return g_threads;
}

int pool_active() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.active;
}

void parallel_tasks(int64_t ntasks, const std::function<void(int64_t)>& fn) {
  if (ntasks <= 0) return;
  Pool& p = pool();
  if (ntasks == 1 || p.workers.empty() || t_inside) {
    for (int64_t t = 0; t < ntasks; t++) fn(t);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.job = &fn;
    p.ntasks = ntasks;
    p.next.store(0);
    p.active = static_cast<int>(p.workers.size());
    p.generation++;
  }
  p.wake.notify_all();
  p.run_tasks();
  std::unique_lock<std::mutex> lock(p.mu);
  p.done.wait(lock, [&] { return p.active == 0; });
  p.job = nullptr;
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int64_t parts = std::min<int64_t>(num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  int64_t step = (n + parts - 1) / parts;
  parallel_tasks(parts, [&](int64_t t) {
    int64_t b = t * step, e = std::min(n, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace refrag
