//! The actix arbiters tenant actors run on: one per core, on a dedicated
//! system thread, so the engine can be started from any tokio runtime (the
//! server's, or a test's) and stopped cleanly, dropping every actor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, System};

pub struct Arbiters {
    handles: Vec<ArbiterHandle>,
    system: System,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Round-robin cursor spreading tenants over arbiters.
    next: AtomicUsize,
}

impl Arbiters {
    pub fn start(count: usize) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("actor-system".into()).spawn(move || {
            let runner = System::new();
            let arbiters: Vec<Arbiter> = (0..count.max(1)).map(|_| Arbiter::new()).collect();
            let handles = arbiters.iter().map(Arbiter::handle).collect::<Vec<_>>();
            if tx.send((System::current(), handles)).is_err() {
                return;
            }
            let _ = runner.run();
            for arbiter in arbiters {
                arbiter.stop();
                let _ = arbiter.join();
            }
        })?;
        let (system, handles) = rx
            .recv()
            .map_err(|_| std::io::Error::other("the actor system thread did not start"))?;
        Ok(Arbiters {
            handles,
            system,
            thread: Mutex::new(Some(thread)),
            next: AtomicUsize::new(0),
        })
    }

    pub fn spawn<A>(&self, actor: A) -> Addr<A>
    where
        A: Actor<Context = actix::Context<A>> + Send,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        A::start_in_arbiter(&self.handles[i], move |_| actor)
    }

    /// Stops every arbiter (dropping their actors) and waits for them.
    pub fn stop(&self) {
        self.system.stop();
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Arbiters {
    fn drop(&mut self) {
        self.stop();
    }
}
