//! The message-bus port: durable work queues with explicit acknowledgement.
//!
//! Messages only wake workers; the database row is the truth. A worker acks a
//! job message as soon as it has claimed the job in the database, so long work
//! never holds an unacked delivery (RabbitMQ cancels consumers whose deliveries
//! stay unacked past its consumer timeout, 30 minutes by default).

#[cfg(feature = "amqp")]
mod amqp;
mod memory;

use async_trait::async_trait;
use restoreflow_proto::ErrorCode;

#[cfg(feature = "amqp")]
pub use amqp::AmqpBus;
pub use memory::MemoryBus;

/// Well-known queue names (without the configured prefix).
pub mod queues {
    /// Synthetic-data generation jobs.
    pub const SYNTHETIC: &str = "jobs.synthetic";
    /// Training jobs.
    pub const TRAINING: &str = "jobs.training";
    /// Evaluation jobs.
    pub const EVALUATION: &str = "jobs.evaluation";
    /// Batch restoration jobs.
    pub const RESTORE: &str = "jobs.restore";
    /// Completion events for downstream services (reports).
    pub const EVENTS_TRAINING_COMPLETED: &str = "events.training.completed";
}

/// Suffix of the dead-letter queue that rejected messages of a queue go to.
pub const DEAD_LETTER_SUFFIX: &str = ".dead";

/// Errors of the bus port.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect or the connection broke.
    #[error("bus connection error: {0}")]
    Connection(String),
    /// The broker refused or did not confirm a message.
    #[error("bus publish failed: {0}")]
    Publish(String),
    /// A broker operation failed.
    #[error("bus error: {0}")]
    Broker(String),
}

impl BusError {
    /// The shared error code for this failure.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unavailable
    }
}

/// One received message; must be settled with exactly one of the methods.
pub struct Delivery {
    /// Message body.
    pub payload: Vec<u8>,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    acker: Box<dyn Acker>,
}

impl Delivery {
    /// Wraps a payload and its settlement handle (for adapters).
    pub fn new(payload: Vec<u8>, redelivered: bool, acker: Box<dyn Acker>) -> Self {
        Self {
            payload,
            redelivered,
            acker,
        }
    }

    /// Done with it: the broker forgets the message.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Poison message: route it to the dead-letter queue.
    pub async fn reject(self) -> Result<(), BusError> {
        self.acker.reject().await
    }

    /// Could not handle it now: put it back for another consumer.
    pub async fn requeue(self) -> Result<(), BusError> {
        self.acker.requeue().await
    }
}

/// Adapter-specific settlement of a delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Acknowledge.
    async fn ack(&self) -> Result<(), BusError>;
    /// Reject without requeue (dead-letter).
    async fn reject(&self) -> Result<(), BusError>;
    /// Reject with requeue.
    async fn requeue(&self) -> Result<(), BusError>;
}

/// A stream of deliveries from one queue.
#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; `None` once the consumer is closed.
    async fn next(&mut self) -> Option<Result<Delivery, BusError>>;
}

/// The bus port.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// `"amqp"` or `"memory"`.
    fn backend(&self) -> &'static str;
    /// Publishes a persistent message to a durable queue and waits for the
    /// broker's confirmation.
    async fn publish(&self, queue: &str, payload: &[u8]) -> Result<(), BusError>;
    /// Starts consuming a durable queue with the configured prefetch.
    async fn consume(&self, queue: &str, tag: &str) -> Result<Box<dyn Consumer>, BusError>;
    /// Messages ready in a queue (not counting unacked ones).
    async fn depth(&self, queue: &str) -> Result<u64, BusError>;
    /// Checks the broker connection.
    async fn health(&self) -> Result<(), BusError>;
}
