//! RabbitMQ adapter (lapin): durable queues, persistent messages, publisher
//! confirms, manual acks, a dead-letter queue per work queue and a prefetch
//! sized for long jobs.
//!
//! The adapter survives a dropped connection or channel: a publisher opens a
//! new connection on its next call, and a consumer re-subscribes with backoff
//! instead of ending. Deliveries that were unacked when the connection broke
//! go back to their queue (RabbitMQ redelivers them); since jobs are claimed
//! in the database, a redelivered wake-up never runs a job twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::{Acker, Bus, BusError, Consumer, DEAD_LETTER_SUFFIX, Delivery};

/// First wait before a consumer re-subscribes after losing its channel.
const RESUBSCRIBE_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between two re-subscription attempts.
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);

/// RabbitMQ via AMQP 0.9.1.
pub struct AmqpBus {
    shared: Arc<Shared>,
    /// Deadline of a publish, a depth query or a health check.
    timeout: std::time::Duration,
}

/// What the bus and its consumers share: the way to (re)connect.
struct Shared {
    url: String,
    /// Client-provided connection name shown by the broker.
    name: String,
    prefix: String,
    prefetch: u16,
    conn: Mutex<Arc<Connection>>,
    publisher: Mutex<Option<Channel>>,
    /// Set by [`AmqpBus::close`]: consumers end instead of re-subscribing.
    closed: AtomicBool,
}

fn broker(e: lapin::Error) -> BusError {
    BusError::Broker(e.to_string())
}

impl Shared {
    async fn open(url: &str, name: &str) -> Result<Connection, BusError> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        Connection::connect(url, props)
            .await
            .map_err(|e| BusError::Connection(e.to_string()))
    }

    /// The live connection, reconnecting first if it broke.
    async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(BusError::Connection("the bus was closed".into()));
        }
        let mut conn = self.conn.lock().await;
        if !conn.status().connected() {
            tracing::info!(name = %self.name, "amqp connection lost; reconnecting");
            *conn = Arc::new(Self::open(&self.url, &self.name).await?);
            metrics::counter!(crate::metrics::names::BUS_RECONNECTS).increment(1);
            tracing::info!(name = %self.name, "amqp reconnected");
        }
        Ok(conn.clone())
    }

    async fn confirming_channel(conn: &Connection) -> Result<Channel, BusError> {
        let ch = conn.create_channel().await.map_err(broker)?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker)?;
        Ok(ch)
    }

    fn queue_name(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    async fn publish(&self, name: &str, payload: &[u8]) -> Result<(), BusError> {
        let mut publisher = self.publisher.lock().await;
        let ch = match publisher.take() {
            Some(ch) if ch.status().connected() => ch,
            _ => Self::confirming_channel(&*self.connection().await?).await?,
        };
        declare(&ch, name).await?;
        let confirm = ch
            .basic_publish(
                "".into(),
                name.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into()),
            )
            .await
            .map_err(|e| BusError::Publish(e.to_string()))?
            .await
            .map_err(|e| BusError::Publish(e.to_string()))?;
        // Only a channel that just worked is kept for the next message.
        *publisher = Some(ch);
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(BusError::Publish(format!(
                "broker did not confirm message to {name}"
            )))
        }
    }

    /// Opens a channel with the prefetch and subscribes to `name`.
    async fn subscribe(&self, name: &str, tag: &str) -> Result<AmqpSubscription, BusError> {
        let conn = self.connection().await?;
        let ch = conn.create_channel().await.map_err(broker)?;
        ch.basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(broker)?;
        declare(&ch, name).await?;
        let inner = ch
            .basic_consume(
                name.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        Ok(AmqpSubscription {
            inner,
            _channel: ch,
        })
    }
}

/// Declares `name` (durable, dead-lettering to `name.dead`) and its dead-letter queue.
async fn declare(ch: &Channel, name: &str) -> Result<u32, BusError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    if name.ends_with(DEAD_LETTER_SUFFIX) {
        // A dead-letter queue is a plain durable queue.
        let q = ch
            .queue_declare(name.into(), durable, FieldTable::default())
            .await
            .map_err(broker)?;
        return Ok(q.message_count());
    }
    let dead = format!("{name}{DEAD_LETTER_SUFFIX}");
    ch.queue_declare(dead.as_str().into(), durable, FieldTable::default())
        .await
        .map_err(broker)?;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    let q = ch
        .queue_declare(name.into(), durable, args)
        .await
        .map_err(broker)?;
    Ok(q.message_count())
}

/// Deadline of broker calls unless [`AmqpBus::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AmqpBus {
    /// The same bus with `timeout` as the deadline of publishes (confirm
    /// included), depth queries and health checks, reconnecting included.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn deadline<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, BusError>>,
    ) -> Result<T, BusError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(BusError::Connection(format!(
                    "{what}: no answer from the broker within {} s",
                    self.timeout.as_secs_f64()
                )))
            })
    }

    /// Connects and opens a confirming publisher channel. The broker lists
    /// the connection as `restoreflow {prefix}`; see [`AmqpBus::connect_named`].
    pub async fn connect(url: &str, prefix: &str, prefetch: u16) -> Result<Self, BusError> {
        Self::connect_named(url, prefix, prefetch, &format!("restoreflow {prefix}")).await
    }

    /// Connects with a client-provided connection `name` (what the broker
    /// lists, and what `rabbitmqctl close_connection` can target).
    pub async fn connect_named(
        url: &str,
        prefix: &str,
        prefetch: u16,
        name: &str,
    ) -> Result<Self, BusError> {
        let conn = Shared::open(url, name).await?;
        let publisher = Shared::confirming_channel(&conn).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                url: url.to_string(),
                name: name.to_string(),
                prefix: prefix.to_string(),
                prefetch,
                conn: Mutex::new(Arc::new(conn)),
                publisher: Mutex::new(Some(publisher)),
                closed: AtomicBool::new(false),
            }),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Closes the connection for good; unacked deliveries go back to their
    /// queues and consumers end.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let conn = self.shared.conn.lock().await.clone();
        if let Err(e) = conn.close(200, "closing".into()).await {
            tracing::debug!(error = %e, "amqp close");
        }
    }

    /// Closes the current connection as a broken network would look to the
    /// bus: consumers lose their channels and must re-subscribe, publishers
    /// must reconnect. Unlike [`AmqpBus::close`] the bus stays usable.
    pub async fn kill_connection_for_tests(&self) {
        let conn = self.shared.conn.lock().await.clone();
        if let Err(e) = conn.close(320, "connection killed by a test".into()).await {
            tracing::debug!(error = %e, "amqp kill");
        }
    }
}

struct AmqpAcker(lapin::Acker);

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.0
            .ack(BasicAckOptions::default())
            .await
            .map_err(broker)?;
        Ok(())
    }
    async fn reject(&self) -> Result<(), BusError> {
        self.0
            .reject(BasicRejectOptions { requeue: false })
            .await
            .map_err(broker)?;
        Ok(())
    }
    async fn requeue(&self) -> Result<(), BusError> {
        self.0
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await
            .map_err(broker)?;
        Ok(())
    }
}

/// One subscription: a lapin consumer and the channel it lives on.
struct AmqpSubscription {
    inner: lapin::Consumer,
    // Keeps the consumer's channel open as long as the subscription lives.
    _channel: Channel,
}

/// A consumer that outlives its channel: when the subscription ends or
/// fails, it subscribes again (on a new connection if needed) with backoff.
struct AmqpConsumer {
    shared: Arc<Shared>,
    queue: String,
    tag: String,
    current: Option<AmqpSubscription>,
}

impl AmqpConsumer {
    /// Subscribes again, waiting between attempts; `None` once the bus is closed.
    async fn resubscribe(&mut self) -> Option<()> {
        let mut wait = RESUBSCRIBE_FIRST;
        loop {
            if self.shared.closed.load(Ordering::SeqCst) {
                return None;
            }
            match self.shared.subscribe(&self.queue, &self.tag).await {
                Ok(sub) => {
                    tracing::info!(queue = %self.queue, "amqp consumer re-subscribed");
                    self.current = Some(sub);
                    return Some(());
                }
                Err(e) => {
                    tracing::warn!(queue = %self.queue, error = %e, retry_in_ms = wait.as_millis() as u64, "amqp re-subscribe failed");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RESUBSCRIBE_MAX);
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for AmqpConsumer {
    // Cancel-safe: dropping this future mid-resubscribe leaves `current`
    // empty, and the next call simply subscribes again.
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            if self.current.is_none() {
                self.resubscribe().await?;
            }
            let sub = self.current.as_mut()?;
            match sub.inner.next().await {
                Some(Ok(d)) => {
                    return Some(Ok(Delivery::new(
                        d.data,
                        d.redelivered,
                        Box::new(AmqpAcker(d.acker)),
                    )));
                }
                Some(Err(e)) => {
                    tracing::warn!(queue = %self.queue, error = %e, "amqp consumer lost its channel");
                    self.current = None;
                }
                None => {
                    if self.shared.closed.load(Ordering::SeqCst) {
                        return None;
                    }
                    tracing::warn!(queue = %self.queue, "amqp consumer was cancelled");
                    self.current = None;
                }
            }
        }
    }
}

#[async_trait]
impl Bus for AmqpBus {
    fn backend(&self) -> &'static str {
        "amqp"
    }

    #[tracing::instrument(skip(self, payload), fields(size = payload.len()), err)]
    async fn publish(&self, queue: &str, payload: &[u8]) -> Result<(), BusError> {
        let name = self.shared.queue_name(queue);
        self.deadline("publish", async {
            match self.shared.publish(&name, payload).await {
                // A connection that broke since the last call is only noticed on
                // use: try once more on a fresh one.
                Err(BusError::Broker(e) | BusError::Publish(e)) => {
                    tracing::info!(error = %e, "amqp publish failed; retrying on a new channel");
                    self.shared.publish(&name, payload).await
                }
                other => other,
            }
        })
        .await
    }

    async fn consume(&self, queue: &str, tag: &str) -> Result<Box<dyn Consumer>, BusError> {
        let name = self.shared.queue_name(queue);
        let first = self.shared.subscribe(&name, tag).await?;
        Ok(Box::new(AmqpConsumer {
            shared: self.shared.clone(),
            queue: name,
            tag: tag.to_string(),
            current: Some(first),
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        self.deadline("queue depth", async {
            let conn = self.shared.connection().await?;
            let ch = conn.create_channel().await.map_err(broker)?;
            let n = declare(&ch, &self.shared.queue_name(queue)).await?;
            let _ = ch.close(200, "done".into()).await;
            Ok(u64::from(n))
        })
        .await
    }

    async fn health(&self) -> Result<(), BusError> {
        // Reconnects when the connection broke, so health reflects whether the
        // broker is reachable now, not whether the last connection survived.
        // A channel round trip: a connection that is open but silent (a
        // stalled broker) is not healthy.
        self.deadline("health", async {
            let conn = self.shared.connection().await?;
            let ch = conn.create_channel().await.map_err(broker)?;
            let _ = ch.close(200, "health".into()).await;
            Ok(())
        })
        .await
    }
}
