//! Threaded code and its tests, run in wasm under wt-run.

use std::sync::{mpsc, Arc, Mutex};
use std::thread;

/// Sums `0..n` with `workers` threads, each adding its share into a shared total.
pub fn parallel_sum(n: u64, workers: u64) -> u64 {
    let total = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let total = total.clone();
            thread::spawn(move || {
                let part: u64 = (w..n).step_by(workers as usize).sum();
                *total.lock().unwrap() += part;
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let sum = *total.lock().unwrap();
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_join_with_results() {
        let handles: Vec<_> = (0..4u32).map(|i| thread::spawn(move || i * i)).collect();
        let squares: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(squares, vec![0, 1, 4, 9]);
    }

    #[test]
    fn mutex_protects_a_counter() {
        let counter = Arc::new(Mutex::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = counter.clone();
                thread::spawn(move || {
                    for _ in 0..1000 {
                        *c.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*counter.lock().unwrap(), 8000);
    }

    #[test]
    fn channel_carries_messages_between_threads() {
        let (tx, rx) = mpsc::channel();
        let producer = thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        let received: Vec<i32> = rx.iter().collect();
        producer.join().unwrap();
        assert_eq!(received, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn sixteen_threads_at_once() {
        assert_eq!(parallel_sum(100_000, 16), (0..100_000u64).sum());
    }
}
