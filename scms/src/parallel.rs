//! Spreading independent per-ticket work (expansion, issuance, opening)
//! over the machine's cores with scoped threads, results in input order.

/// Most worker threads.
const MAX_THREADS: usize = 8;
/// Below this many items one thread does it all.
const MIN_PARALLEL: usize = 64;

/// `items.iter().map(f)`, in chunks on up to [`MAX_THREADS`] threads.
/// A panicking worker's items become `on_panic()`.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    on_panic: impl Fn() -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_THREADS);
    if threads == 1 || items.len() < MIN_PARALLEL {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (h, part) in handles.into_iter().zip(items.chunks(chunk)) {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(_) => out.extend(part.iter().map(|_| on_panic())),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_covers_every_item() {
        let items: Vec<u32> = (0..1000).collect();
        let out = super::map(&items, |x| x * 2, || u32::MAX);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let small = super::map(&items[..3], |x| x + 1, || 0);
        assert_eq!(small, vec![1, 2, 3]);
    }
}
