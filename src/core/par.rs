//! Work spread over every core, in order: the reader, the plan and the renderers map each
//! account independently, and a 10,000-account repository is worth two cores.

/// `f` over contiguous runs of `items` on every core; the results in the items' order.
/// Below `min` items it stays on this thread (threads cost more than they save).
pub fn map<T: Sync, R: Send>(items: &[T], min: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < min.max(2) {
        return items.iter().map(f).collect();
    }
    let size = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let runs: Vec<_> = items
            .chunks(size)
            .map(|run| s.spawn(move || run.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for run in runs {
            out.extend(run.join().expect("a worker thread panicked"));
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
    }
}
