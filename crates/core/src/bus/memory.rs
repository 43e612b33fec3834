//! In-process bus for the embedded mode: one FIFO per queue shared by every
//! consumer in the process. Rejected messages go to the queue's `.dead` twin,
//! as on RabbitMQ.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Acker, Bus, BusError, Consumer, DEAD_LETTER_SUFFIX, Delivery};

#[derive(Default)]
struct Queue {
    items: Mutex<VecDeque<(Vec<u8>, bool)>>,
    notify: Notify,
}

impl Queue {
    fn push_back(&self, payload: Vec<u8>, redelivered: bool) {
        self.lock().push_back((payload, redelivered));
        self.notify.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Vec<u8>, bool)>> {
        // A poisoned lock only means another thread panicked mid-push; the
        // queue itself is still a valid VecDeque.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The in-process bus.
#[derive(Clone, Default)]
pub struct MemoryBus {
    queues: Arc<Mutex<HashMap<String, Arc<Queue>>>>,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, name: &str) -> Arc<Queue> {
        let mut map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }
}

struct MemoryAcker {
    payload: Vec<u8>,
    queue: Arc<Queue>,
    dead: Arc<Queue>,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn reject(&self) -> Result<(), BusError> {
        self.dead.push_back(self.payload.clone(), false);
        Ok(())
    }
    async fn requeue(&self) -> Result<(), BusError> {
        self.queue.push_back(self.payload.clone(), true);
        Ok(())
    }
}

struct MemoryConsumer {
    queue: Arc<Queue>,
    dead: Arc<Queue>,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            let notified = self.queue.notify.notified();
            if let Some((payload, redelivered)) = self.queue.lock().pop_front() {
                let acker = MemoryAcker {
                    payload: payload.clone(),
                    queue: self.queue.clone(),
                    dead: self.dead.clone(),
                };
                return Some(Ok(Delivery::new(payload, redelivered, Box::new(acker))));
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, queue: &str, payload: &[u8]) -> Result<(), BusError> {
        self.queue(queue).push_back(payload.to_vec(), false);
        Ok(())
    }

    async fn consume(&self, queue: &str, _tag: &str) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(MemoryConsumer {
            queue: self.queue(queue),
            dead: self.queue(&format!("{queue}{DEAD_LETTER_SUFFIX}")),
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        Ok(self.queue(queue).lock().len() as u64)
    }

    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_requeue_and_dead_letter() {
        let bus = MemoryBus::new();
        bus.publish("q", b"one").await.unwrap();
        bus.publish("q", b"two").await.unwrap();
        assert_eq!(bus.depth("q").await.unwrap(), 2);
        let mut c = bus.consume("q", "t").await.unwrap();
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(d.payload, b"one");
        d.reject().await.unwrap();
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(d.payload, b"two");
        d.requeue().await.unwrap();
        let d = c.next().await.unwrap().unwrap();
        assert!(d.redelivered);
        d.ack().await.unwrap();
        assert_eq!(bus.depth("q").await.unwrap(), 0);
        assert_eq!(bus.depth("q.dead").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn consumer_wakes_on_publish() {
        let bus = MemoryBus::new();
        let mut c = bus.consume("q", "t").await.unwrap();
        let b2 = bus.clone();
        tokio::spawn(async move { b2.publish("q", b"late").await.unwrap() });
        let d = tokio::time::timeout(std::time::Duration::from_secs(5), c.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.payload, b"late");
    }
}
