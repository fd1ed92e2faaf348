//! Writes asked for with an `Idempotency-Key`: the answer is rendered in
//! the same step as the change (by the caller's `render`, so the engine
//! never knows what an HTTP answer looks like) and stored with it, so a
//! crash never keeps one without the other; a retry reads it back.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashSet;

use crate::domain::{Answer, AnswerKey, Hash, Timestamp};
use crate::store::Watermark;

use super::error::Error;
use super::Engine;

type Render<T> = Box<dyn FnOnce(&T) -> (u16, Vec<u8>) + Send>;

/// How to answer a write whose answer is to be kept: under which key, for
/// which request (its fingerprint), rendered how (status and body).
pub struct Keyed<T> {
    key: AnswerKey,
    fingerprint: Hash,
    render: Render<T>,
}

impl<T: 'static> Keyed<T> {
    pub fn new(key: AnswerKey, fingerprint: Hash, render: impl FnOnce(&T) -> (u16, Vec<u8>) + Send + 'static) -> Self {
        Keyed {
            key,
            fingerprint,
            render: Box::new(render),
        }
    }

    /// The answer to `value`, dated now.
    pub(crate) fn answer(self, value: &T) -> Answer {
        let (status, body) = (self.render)(value);
        Answer {
            key: self.key,
            fingerprint: self.fingerprint,
            at: Timestamp::now(),
            status,
            body,
        }
    }

    /// The same answer, rendered from what `f` makes of another value (an
    /// actor's reply, before the engine shapes it).
    pub(crate) fn from<U: 'static>(self, f: impl FnOnce(&U) -> T + Send + 'static) -> Keyed<U> {
        let render = self.render;
        Keyed {
            key: self.key,
            fingerprint: self.fingerprint,
            render: Box::new(move |u: &U| render(&f(u))),
        }
    }
}

/// The answer to keep for `value`, if one is asked for.
pub(crate) fn answer<T: 'static>(keyed: Option<Keyed<T>>, value: &T) -> Option<Answer> {
    keyed.map(|k| k.answer(value))
}

/// What a request with an `Idempotency-Key` is to do.
pub enum Kept {
    /// Run it, keeping its answer (`KeyGuard::keyed`).
    Run(KeyGuard),
    /// Send the answer its first request got, and do nothing else.
    Replay(Answer),
}

/// A key whose first request is running: held until its answer (or its
/// refusal) is durable, so that no other request with the key runs at the
/// same time or sees an answer a crash could take back.
pub struct KeyGuard {
    key: AnswerKey,
    fingerprint: Hash,
    in_flight: Arc<DashSet<AnswerKey>>,
    watermark: Watermark,
}

impl KeyGuard {
    /// What the request's write needs to keep its answer (the guard itself
    /// stays with whoever waits for the answer to be durable).
    pub fn stamp(&self) -> KeyStamp {
        KeyStamp {
            key: self.key,
            fingerprint: self.fingerprint,
        }
    }
}

/// A running request's key and fingerprint (`KeyGuard::stamp`).
#[derive(Debug, Clone, Copy)]
pub struct KeyStamp {
    key: AnswerKey,
    fingerprint: Hash,
}

impl KeyStamp {
    /// How the write keeps its answer: rendered by `render` from its outcome.
    pub fn keyed<T: 'static>(&self, render: impl FnOnce(&T) -> (u16, Vec<u8>) + Send + 'static) -> Keyed<T> {
        Keyed::new(self.key, self.fingerprint, render)
    }
}

impl Drop for KeyGuard {
    /// The key is free again once everything written so far (the request's
    /// write included) is on disk: only then may a retry read the answer.
    /// Dropped once the answer was durable (the usual way), it is free at
    /// once; dropped early (the client left), once the disk has caught up.
    fn drop(&mut self) {
        let (key, in_flight, watermark) = (self.key, Arc::clone(&self.in_flight), self.watermark.clone());
        let seq = watermark.latest();
        if watermark.covers(seq) {
            in_flight.remove(&key);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    // A failed store answers nothing more; freeing the key is harmless.
                    let _ = watermark.durable(seq).await;
                    in_flight.remove(&key);
                });
            }
            Err(_) => {
                in_flight.remove(&key);
            }
        }
    }
}

impl Engine {
    /// What to do with a request carrying `key` (already scoped to its
    /// caller) whose method, path and body have `fingerprint`: run it if the
    /// key is new (or its answer expired), replay the answer its first
    /// request got, or refuse it while that request runs or if it was a
    /// different request.
    pub fn idempotent(&self, key: AnswerKey, fingerprint: Hash) -> Result<Kept, Error> {
        if !self.keys_in_flight.insert(key) {
            return Err(Error::KeyInFlight);
        }
        let guard = KeyGuard {
            key,
            fingerprint,
            in_flight: Arc::clone(&self.keys_in_flight),
            watermark: self.store.watermark(),
        };
        // A key in the store and not in flight is durable: its request's
        // guard let go only once it was (and start flushed what it restored).
        let cutoff = self.answers_expire_before();
        match self.store.answer(&key)?.filter(|a| a.at >= cutoff) {
            None => Ok(Kept::Run(guard)),
            Some(answer) if answer.fingerprint == fingerprint => Ok(Kept::Replay(answer)),
            Some(_) => Err(Error::KeyReused),
        }
    }

    /// Removes the answers older than the retention; how many went. Under
    /// the retention lock, so that `stop` waits for a purge in progress
    /// (and none starts after it) before the store closes.
    pub async fn purge_answers(&self) -> Result<usize, Error> {
        let cutoff = self.answers_expire_before();
        let (store, lock, stopping) = (
            Arc::clone(&self.store),
            Arc::clone(&self.retention),
            Arc::clone(&self.stopping),
        );
        tokio::task::spawn_blocking(move || {
            let _purging = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(0);
            }
            store.purge_answers(cutoff)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("answer purge task: {e}")))?
        .map_err(Error::from)
    }

    /// How long answers are kept (`[idempotency] retention_hours`).
    pub fn answers_kept(&self) -> Duration {
        self.answers_kept
    }

    fn answers_expire_before(&self) -> Timestamp {
        let kept = i64::try_from(self.answers_kept.as_micros()).unwrap_or(i64::MAX);
        Timestamp::from_micros(Timestamp::now().micros().saturating_sub(kept))
    }
}
