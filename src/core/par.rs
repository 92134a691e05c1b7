//! Work spread over every core, in order: the reader, the plan and the renderers map each
//! account independently, and a 10,000-account repository is worth two cores.

/// How many threads to spread `len` items over: one below `min` items (threads cost more
/// than they save there), else one per core.
fn threads(len: usize, min: usize) -> usize {
    if len < min.max(2) { 1 } else { cores() }
}

/// The cores this process may use, asked once: the standard library reads the cgroup's
/// quota from /proc and /sys at each call, tens of microseconds, and a check of 20,000 small
/// files asked once for each (two thirds of its time).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` over contiguous runs of `items` on every core; the results in the items' order. Each
/// run writes its results straight into their places in the one vector returned (joining
/// runs' vectors would copy every result into fresh memory, on one thread).
///
/// The runs are several per thread, each taken by whichever thread is free: the plan, the
/// rules and the custom rules run side by side on two cores, and with one run per thread a
/// thread slowed by the others finished last while its partner's core stood idle.
pub fn map<T: Sync, R: Send>(items: &[T], min: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads(items.len(), min);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let size = items.len().div_ceil(threads * RUNS_PER_THREAD);
    let mut out: Vec<R> = Vec::with_capacity(items.len());
    let runs = std::sync::Mutex::new(
        out.spare_capacity_mut()[..items.len()]
            .chunks_mut(size)
            .zip(items.chunks(size)),
    );
    let work = || {
        loop {
            // the lock is held only to take the next run
            let next = runs.lock().expect("a worker thread panicked").next();
            let Some((slots, run)) = next else { break };
            for (slot, item) in slots.iter_mut().zip(run) {
                slot.write(f(item));
            }
        }
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        work();
        for w in workers {
            w.join().expect("a worker thread panicked");
        }
    });
    // SAFETY: the first `items.len()` slots were each written once above: the runs split
    // them with the items, one slot per item, each run was taken by one thread, and every
    // thread took runs until none was left (a run that panicked would have panicked the
    // join or the scope, and `out` would be dropped empty).
    unsafe { out.set_len(items.len()) };
    out
}

/// How many runs [`map`] cuts its items into for each thread.
const RUNS_PER_THREAD: usize = 8;

/// `f` over contiguous runs of `items`, owned (each run moves its items), on every core;
/// the results in order.
pub fn chunks<T: Send, R: Send>(
    mut items: Vec<T>,
    min: usize,
    f: impl Fn(Vec<T>) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = threads(items.len(), min);
    if threads <= 1 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    while items.len() > size {
        let rest = items.split_off(size);
        runs.push(std::mem::replace(&mut items, rest));
    }
    runs.push(items);
    joined(runs, f)
}

/// Each run but the first on a thread of its own, the first on the calling thread (whose
/// heap then holds part of what is built, and which would otherwise wait idle); the results
/// joined in the runs' order.
fn joined<U: Send, R: Send>(runs: Vec<U>, f: impl Fn(U) -> Vec<R> + Sync) -> Vec<R> {
    let f = &f;
    let mut runs = runs.into_iter();
    let Some(first) = runs.next() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = runs.map(|run| s.spawn(move || f(run))).collect();
        let mut out = f(first);
        for w in workers {
            out.extend(w.join().expect("a worker thread panicked"));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_on_every_core() {
        let items: Vec<usize> = (0..10_001).collect();
        assert_eq!(
            super::map(&items, 10, |i| i * 2),
            (0..10_001).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert_eq!(super::map(&items[..3], 10, |i| i + 1), vec![1, 2, 3]);
        // fewer items than runs, and a last run shorter than the others
        assert_eq!(super::map(&items[..5], 2, |i| i + 1), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            super::map(&items[..37], 2, |i| i * 3),
            (0..37).map(|i| i * 3).collect::<Vec<_>>()
        );
        // each item once
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let once = super::map(&items, 10, |i| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *i
        });
        assert_eq!(calls.into_inner(), items.len());
        assert_eq!(once, items);
        let names = super::map(&items, 10, |i| format!("n{i}"));
        assert_eq!(names.len(), 10_001);
        assert!(names.iter().enumerate().all(|(i, n)| *n == format!("n{i}")));
        let doubled = super::chunks(items.clone(), 10, |run| {
            run.into_iter().map(|i| i * 2).collect()
        });
        assert_eq!(doubled, (0..10_001).map(|i| i * 2).collect::<Vec<_>>());
    }
}
