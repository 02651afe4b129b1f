//! Stress tests: many opens cancelled at random points, and many budget waiters
//! cancelled at random points, checking that nothing leaks and nothing hangs.
//!
//! - 100,000 opens of a counting fake descriptor (through the crate's real
//!   `open_in_lane`) and 100,000 opens of real files, each future polled 0–3 times
//!   and dropped (a few are kept for a while), on a 2-thread pool with a budget of 16:
//!   afterwards every fake opened is closed, no descriptor into the test directory is
//!   left in `/proc/self/fd`, and every permit is back.
//! - 10,000 tokio tasks over `Budget::new(8)`, each waiter given up at a random point
//!   (a random `tokio::time::timeout`, or a drop after a few polls): at most 8 holders
//!   at once, and afterwards `available() == 8`, `waiters() == 0`.
//!
//! - 1,000,000 random operations with cancellation (`opseq`'s ops, in sequences of
//!   1,000, alternately on real files and on the counting fake), every step checked
//!   against the model, no descriptor leaked and every permit back after each
//!   sequence (about 30 s in debug on two cores; `AOPEN_STRESS_OPS=<n>` for another
//!   count).
//! - 300 rounds of eight permits released back to back to eight queued waiters: all
//!   eight must hold a permit at the same time (a release that wakes a waiter that is
//!   already woken would strand a unit).
//!
//! Randomness comes from a seeded xorshift; the seed is printed, and
//! `AOPEN_STRESS_SEED=<n>` replays it. Each test runs under a watchdog that prints the
//! pool's stats and aborts the process after 120 s (a hang is a failure, not a stuck
//! CI job).

#[path = "support/opseq.rs"]
mod opseq;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aopen::__internals::{open_in_lane, Lane};
use aopen::{Budget, Pool};
use opseq::{
    fds_into, poll_then_drop, private_pool, shutdown_clean, Config, FakeFd, Log, Op, TempDir,
    Watchdog,
};

const WATCHDOG: Duration = Duration::from_secs(120);
const BUDGET: usize = 16;

/// xorshift64*: small, seeded, good enough to pick cancellation points.
struct Rng(u64);

impl Rng {
    fn seeded(test: &str) -> Rng {
        let seed = std::env::var("AOPEN_STRESS_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: seed {seed} (replay with AOPEN_STRESS_SEED={seed})");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn watchdog(test: &'static str, pool: &Pool) -> Watchdog {
    let pool = pool.clone();
    Watchdog::start(WATCHDOG, move || format!("{test}: {:?}", pool.stats()))
}

/// Polls 0–3 times (yielding 0–3 times after each poll), then drops; if it completed,
/// one in `keep_one_in` is kept until a later iteration (at most 8 are), so opens and
/// closes overlap.
fn cancel_at_random<T>(
    rng: &mut Rng,
    keep_one_in: u64,
    kept: &mut Vec<T>,
    fut: impl Future<Output = T>,
) -> bool {
    let polls = rng.below(4) as u8;
    let spin = rng.below(4) as u8;
    let keep = keep_one_in > 0 && rng.below(keep_one_in) == 0;
    let mut fut = std::pin::pin!(fut);
    let waker = opseq::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..polls {
        let poll = fut.as_mut().poll(&mut cx);
        for _ in 0..spin {
            std::thread::yield_now();
        }
        if let Poll::Ready(value) = poll {
            if keep {
                kept.push(value);
                if kept.len() > 8 {
                    kept.remove(rng.below(kept.len() as u64) as usize);
                }
            }
            return true;
        }
    }
    false
}

/// `opens` open futures of the counting fake (the real `open_in_lane` behind a real
/// budget acquire), each cancelled at a random point; then every fake opened must
/// be closed, never more than `budget` open at once, every permit back.
fn fake_opens(test: &'static str, opens: usize, threads: usize, budget: usize, keep_one_in: u64) {
    let mut rng = Rng::seeded(test);
    let pool = private_pool(threads, budget);
    let _watchdog = watchdog(test, &pool);
    let log = Log::counting();
    let started = Instant::now();
    let mut kept: Vec<aopen::BlockingTask<std::io::Result<Lane<FakeFd>>>> = Vec::new();
    let mut kept_lanes: Vec<std::io::Result<Lane<FakeFd>>> = Vec::new();
    let mut completed = 0;
    for i in 0..opens {
        let acquire = pool.budget().acquire();
        let (open_pool, open_log) = (pool.clone(), log.clone());
        let open = async move {
            let permit = acquire.await;
            open_in_lane(&open_pool, permit, move || FakeFd::open(&open_log)).await
        };
        if cancel_at_random(&mut rng, keep_one_in, &mut kept_lanes, open) {
            completed += 1;
        }
        // Also cancel the bare open task (permit already taken) at random points.
        if i % 4 == 0 {
            if let Some(permit) = pool.budget().try_acquire() {
                let open_log = log.clone();
                let task = open_in_lane(&pool, permit, move || FakeFd::open(&open_log));
                if keep_one_in > 0 && rng.below(keep_one_in / 2) == 0 {
                    kept.push(task);
                    if kept.len() > 4 {
                        drop(kept.remove(0));
                    }
                } else {
                    poll_then_drop(task, rng.below(4) as u8, rng.below(4) as u8);
                }
            }
        }
        let stats = pool.stats();
        assert!(stats.descriptors_held <= budget, "over budget: {stats:?}");
    }
    drop(kept);
    drop(kept_lanes);
    shutdown_clean(&pool, test);
    let opened = log.check(&[], budget, test);
    eprintln!(
        "{test}: {opens} open futures ({completed} completed before the drop), \
         {opened} fakes opened, {} closed, {} leaked, at most {} open at once \
         (budget {budget}), permits {}/{}, {:.1?}",
        log.closes(),
        opened - log.closes(),
        log.max_open(),
        pool.budget().available(),
        pool.budget().capacity(),
        started.elapsed()
    );
}

#[test]
fn fake_opens_cancelled_at_random_points_leak_nothing() {
    fake_opens("fake_opens", 100_000, 2, BUDGET, 64);
}

/// A budget of one, where a permit given back a moment too early (before the close
/// returned) shows as two fakes open at once.
#[test]
fn fake_opens_on_a_budget_of_one_never_overlap() {
    fake_opens("fake_opens_budget_one", 30_000, 3, 1, 0);
}

#[test]
fn real_opens_cancelled_at_random_points_leak_nothing() {
    const OPENS: usize = 100_000;
    const FILES: usize = 16;
    let mut rng = Rng::seeded("real_opens");
    let dir = TempDir::new("stress");
    let paths: Vec<_> = (0..FILES)
        .map(|i| {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, b"stress").unwrap();
            path
        })
        .collect();
    let pool = private_pool(2, BUDGET);
    let _watchdog = watchdog("real_opens", &pool);
    let started = Instant::now();
    let mut kept = Vec::new();
    let mut completed = 0;
    let mut peak_fds = 0;
    for i in 0..OPENS {
        let path = &paths[rng.below(FILES as u64) as usize];
        let open = pool.fs().options().read(true).open(path);
        if cancel_at_random(&mut rng, 64, &mut kept, open) {
            completed += 1;
        }
        let stats = pool.stats();
        assert!(stats.descriptors_held <= BUDGET, "over budget: {stats:?}");
        // Windows's probe (`fds_into`) would make the opens in flight fail: there
        // the budget is checked through `descriptors_held` above.
        if cfg!(unix) && i % 1024 == 0 {
            let fds = fds_into(dir.path());
            peak_fds = peak_fds.max(fds);
            assert!(fds <= BUDGET, "{fds} descriptors open, budget {BUDGET}");
        }
    }
    drop(kept);
    shutdown_clean(&pool, "real_opens");
    let leaked = fds_into(dir.path());
    eprintln!(
        "real_opens: {OPENS} open futures ({completed} completed before the drop), \
         {leaked} descriptors leaked (peak sampled {peak_fds}), permits {}/{}, {:.1?}",
        pool.budget().available(),
        pool.budget().capacity(),
        started.elapsed()
    );
    assert_eq!(leaked, 0, "descriptors into the test dir left open");
}

/// Polls the inner future at most `polls` times, then gives up (`None`). Wakes
/// itself after each pending poll, so it is polled again even if the inner future
/// was not woken.
struct GiveUpAfter<F> {
    inner: Pin<Box<F>>,
    polls: u32,
}

impl<F: Future> Future for GiveUpAfter<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(value) = self.inner.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn budget_waiters_cancelled_at_random_points_lose_no_permit() {
    const TASKS: usize = 10_000;
    const CAPACITY: usize = 8;
    let mut rng = Rng::seeded("budget_waiters");
    let budget = Budget::new(CAPACITY);
    let watched = budget.clone();
    let _watchdog = Watchdog::start(WATCHDOG, move || format!("budget_waiters: {watched:?}"));
    let holders = Arc::new(AtomicUsize::new(0));
    let max_holders = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
            let (budget, holders, max_holders, acquired) = (
                budget.clone(),
                holders.clone(),
                max_holders.clone(),
                acquired.clone(),
            );
            let how = rng.below(3);
            let limit = rng.below(2_000);
            let hold = rng.below(16);
            tasks.push(tokio::spawn(async move {
                let permit = match how {
                    // A deadline of 0–2 ms.
                    0 => tokio::time::timeout(Duration::from_micros(limit), budget.acquire())
                        .await
                        .ok(),
                    // Dropped after 0–7 polls.
                    1 => {
                        GiveUpAfter {
                            inner: Box::pin(budget.acquire()),
                            polls: (limit % 8) as u32,
                        }
                        .await
                    }
                    // Waits as long as it takes.
                    _ => Some(budget.acquire().await),
                };
                if let Some(permit) = permit {
                    acquired.fetch_add(1, Ordering::SeqCst);
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    max_holders.fetch_max(now, Ordering::SeqCst);
                    assert!(now <= CAPACITY, "{now} holders of a budget of {CAPACITY}");
                    if hold == 0 {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    } else {
                        for _ in 0..hold % 4 {
                            tokio::task::yield_now().await;
                        }
                    }
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            }));
        }
        let all = async {
            for task in tasks {
                task.await.expect("a budget task panicked");
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .is_err()
        {
            panic!("budget tasks still waiting after 60 s (a lost wake-up?): {budget:?}");
        }
    });
    drop(runtime);
    let acquired = acquired.load(Ordering::SeqCst);
    eprintln!(
        "budget_waiters: {TASKS} tasks, {acquired} got a permit, {} gave up, at most {} \
         holders at once, available {}/{CAPACITY}, waiters {}, {:.1?}",
        TASKS - acquired,
        max_holders.load(Ordering::SeqCst),
        budget.available(),
        budget.waiters(),
        started.elapsed()
    );
    assert!(max_holders.load(Ordering::SeqCst) <= CAPACITY);
    assert_eq!(budget.available(), CAPACITY, "permits lost");
    assert_eq!(budget.waiters(), 0, "waiters left behind");
    // And the budget still works: all eight units can be taken at once.
    let all: Vec<_> = (0..CAPACITY).map(|_| budget.try_acquire()).collect();
    assert!(all.iter().all(Option::is_some), "a unit is stuck");
}

/// Eight waiters queue on a budget of eight whose units are all held; the eight
/// units are then released back to back, faster than a woken waiter can run. Every
/// waiter must get a unit, all at the same time: with `notify(1)` instead of
/// `notify(1.additional())`, the second release would wake nobody (one waiter is
/// already notified and has not run), and a unit would sit unused.
#[test]
fn back_to_back_releases_wake_as_many_waiters() {
    use std::sync::mpsc;

    const CAPACITY: usize = 8;
    const ROUNDS: usize = 300;
    let budget = Budget::new(CAPACITY);
    let watched = budget.clone();
    let _watchdog = Watchdog::start(WATCHDOG, move || {
        format!("back_to_back_releases: {watched:?}")
    });
    let started = Instant::now();
    // Each waiter thread: per round, wait for "go", acquire, report, wait for "done".
    let (got_tx, got_rx) = mpsc::channel::<usize>();
    let mut controls = Vec::new();
    let mut threads = Vec::new();
    for waiter in 0..CAPACITY {
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        let (budget, got_tx) = (budget.clone(), got_tx.clone());
        controls.push(go_tx);
        threads.push(std::thread::spawn(move || {
            while go_rx.recv() == Ok(true) {
                let permit = aopen::block_on(budget.acquire());
                got_tx.send(waiter).unwrap();
                // Hold it until the round is over.
                assert_eq!(go_rx.recv(), Ok(false));
                drop(permit);
            }
        }));
    }
    for round in 0..ROUNDS {
        let held: Vec<_> = (0..CAPACITY)
            .map(|_| budget.try_acquire().expect("a free unit between rounds"))
            .collect();
        for control in &controls {
            control.send(true).unwrap();
        }
        let queued_by = Instant::now() + Duration::from_secs(10);
        while budget.waiters() < CAPACITY {
            assert!(
                Instant::now() < queued_by,
                "round {round}: waiters never queued"
            );
            std::thread::yield_now();
        }
        drop(held);
        for got in 0..CAPACITY {
            if got_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                panic!(
                    "round {round}: {CAPACITY} back-to-back releases woke only {got} of \
                     {CAPACITY} waiters: {budget:?}"
                );
            }
        }
        for control in &controls {
            control.send(false).unwrap();
        }
        let freed_by = Instant::now() + Duration::from_secs(10);
        while budget.available() < CAPACITY {
            assert!(
                Instant::now() < freed_by,
                "round {round}: units not given back"
            );
            std::thread::yield_now();
        }
    }
    drop(controls);
    for thread in threads {
        thread.join().unwrap();
    }
    eprintln!(
        "back_to_back_releases: {ROUNDS} rounds of {CAPACITY} releases, available {}/{CAPACITY}, \
         waiters {}, {:.1?}",
        budget.available(),
        budget.waiters(),
        started.elapsed()
    );
    assert_eq!(budget.available(), CAPACITY);
    assert_eq!(budget.waiters(), 0);
}

/// Operations of the random-sequence run in all, over both backends; `AOPEN_STRESS_OPS`
/// sets another count.
const RANDOM_OPS: usize = 1_000_000;

/// Operations per sequence: long, so a pool's start and shutdown are paid once per
/// thousand operations, not once per few dozen as in `proptest_ops.rs`.
const SEQUENCE_OPS: usize = 1_000;

/// Random bytes decoded per piece of a sequence (the fuzz encoding, `opseq::decode`).
const PIECE_BYTES: usize = 256;

/// A random sequence of `len` operations: fuzz-encoded pieces of random bytes, one
/// after another (cancellations included: `PollThenDrop` is one of the opcodes).
fn random_sequence(rng: &mut Rng, len: usize) -> (Config, Vec<Op>) {
    let mut config = None;
    let mut ops = Vec::with_capacity(len);
    while ops.len() < len {
        let bytes: Vec<u8> = (0..PIECE_BYTES).map(|_| rng.next() as u8).collect();
        let (piece_config, piece) = opseq::decode(&bytes);
        config.get_or_insert(piece_config);
        ops.extend(piece);
    }
    ops.truncate(len);
    (config.expect("at least one piece"), ops)
}

/// A million operations (open, read, write, seek, set_len, try_clone, close, drop,
/// partial listings, each possibly polled a few times and dropped) in sequences of a
/// thousand, half on real files and half on the counting fake in the crate's lanes,
/// every step checked against `opseq`'s model: no descriptor leaked (real: none into
/// the test directory in `/proc/self/fd`; fake: every one opened closed exactly once)
/// and every permit back after each sequence.
#[test]
fn a_million_random_operations_with_cancellation_leak_nothing() {
    let total = std::env::var("AOPEN_STRESS_OPS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(RANDOM_OPS);
    let mut rng = Rng::seeded("random_ops");
    let started = Instant::now();
    let (mut done, mut cancelled, mut sequences) = (0, 0, 0);
    while done < total {
        let len = SEQUENCE_OPS.min(total - done);
        let (config, ops) = random_sequence(&mut rng, len);
        cancelled += ops
            .iter()
            .filter(|op| matches!(op, Op::PollThenDrop { .. } | Op::DropFile { .. }))
            .count();
        // Alternate the backends; each run ends with a clean shutdown, every permit
        // back and (real) no descriptor into its directory left.
        if sequences % 2 == 0 {
            opseq::run_real(&config, &ops);
        } else {
            opseq::run_fake(&config, &ops);
        }
        done += len;
        sequences += 1;
    }
    eprintln!(
        "random_ops: {done} operations in {sequences} sequences ({cancelled} dropped or \
         cancelled), 0 descriptors leaked, 0 permits lost, {:.1?}",
        started.elapsed()
    );
}
