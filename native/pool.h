// One blocking thread pool for every kernel. Workers sleep on a condition variable between jobs (no
// spinning: a spinning pool collapses when the other core is busy). The calling thread takes part.
#pragma once
#include <cstdint>
#include <functional>

namespace refrag {

void set_num_threads(int n);  // n >= 1; restarts the workers
int num_threads();
int pool_active();  // workers inside a job: 0 between jobs (a check for the tests)

// Run fn(task) for task in [0, ntasks), tasks handed out dynamically to the threads. fn must not throw.
void parallel_tasks(int64_t ntasks, const std::function<void(int64_t task)>& fn);

// Split [0, n) into num_threads() contiguous ranges (at least `grain` items each) and run fn(begin, end).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace refrag
