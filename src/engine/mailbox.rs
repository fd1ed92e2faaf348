//! A tenant actor's address with a hard bound on its mailbox.
//!
//! actix's own mailbox capacity bounds nothing here: every `Addr` clone may
//! push one message past it, and every request clones the address. So each
//! message carries a semaphore slot, given back once the actor has handled
//! it: at most `bound` messages wait for (or are in) one actor, however many
//! requests arrive or hang up. The rest are refused at once with
//! `Error::Overloaded` (503 + `Retry-After`) instead of queueing without limit.

use std::sync::Arc;

use actix::{Addr, Handler, Message};
use tokio::sync::Semaphore;

use super::actor::{Slotted, TenantActor};
use super::durable::Durable;
use super::error::Error;

#[derive(Clone)]
pub struct Mailbox {
    addr: Addr<TenantActor>,
    /// Free places in this actor's mailbox.
    slots: Arc<Semaphore>,
    bound: usize,
}

impl Mailbox {
    pub fn new(addr: Addr<TenantActor>, bound: usize) -> Mailbox {
        Mailbox {
            addr,
            slots: Arc::new(Semaphore::new(bound.max(1))),
            bound: bound.max(1),
        }
    }

    /// Messages waiting for (or being handled by) the actor right now.
    pub fn depth(&self) -> usize {
        self.bound.saturating_sub(self.slots.available_permits())
    }

    /// Sends `msg` once the mailbox has room, however long that takes: for
    /// the second step of a change already decided (a transfer's arrival),
    /// which must not be refused for load.
    pub async fn deliver<M, T>(&self, msg: M) -> Result<Durable<T>, Error>
    where
        M: Message<Result = Durable<T>> + Send + 'static,
        T: Send + 'static,
        TenantActor: Handler<Slotted<M>, Result = Durable<T>>,
    {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)?;
        self.addr
            .send(Slotted { msg, slot })
            .await
            .map_err(|_| Error::ShuttingDown)
    }

    /// Sends `msg` if the mailbox has room; the reply is not yet durable.
    pub async fn ask<M, T>(&self, msg: M) -> Result<Durable<T>, Error>
    where
        M: Message<Result = Durable<T>> + Send + 'static,
        T: Send + 'static,
        TenantActor: Handler<Slotted<M>, Result = Durable<T>>,
    {
        let slot = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded)?;
        self.addr
            .send(Slotted { msg, slot })
            .await
            .map_err(|_| Error::ShuttingDown)
    }
}
