//! Work spread over the available cores.

use std::num::NonZeroUsize;
use std::thread;

/// Runs `work` on contiguous chunks of `items`, one per available core, in order.
pub(crate) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<R> {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let chunk_size = items.len().div_ceil(cores).max(1);
    if items.len() <= 1 || cores == 1 {
        return vec![work(0, items)];
    }
    thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .chunks(chunk_size)
            .enumerate()
            .map(|(n, chunk)| scope.spawn(move || work(n * chunk_size, chunk)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
