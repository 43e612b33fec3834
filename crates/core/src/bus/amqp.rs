//! RabbitMQ adapter (lapin): durable queues, persistent messages, publisher
//! confirms, manual acks, a dead-letter queue per work queue and a prefetch
//! sized for long jobs.

use std::sync::Arc;

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

/// RabbitMQ via AMQP 0.9.1.
pub struct AmqpBus {
    conn: Connection,
    publisher: Mutex<Channel>,
    prefix: String,
    prefetch: u16,
}

fn broker(e: lapin::Error) -> BusError {
    BusError::Broker(e.to_string())
}

impl AmqpBus {
    /// Connects and opens a confirming publisher channel.
    pub async fn connect(url: &str, prefix: &str, prefetch: u16) -> Result<Self, BusError> {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(|e| BusError::Connection(e.to_string()))?;
        let publisher = Self::confirming_channel(&conn).await?;
        Ok(Self {
            conn,
            publisher: Mutex::new(publisher),
            prefix: prefix.to_string(),
            prefetch,
        })
    }

    /// Closes the connection; unacked deliveries go back to their queues.
    pub async fn close(&self) {
        if let Err(e) = self.conn.close(200, "closing".into()).await {
            tracing::debug!(error = %e, "amqp close");
        }
    }

    async fn confirming_channel(conn: &Connection) -> Result<Channel, BusError> {
        let ch = conn.create_channel().await.map_err(broker)?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker)?;
        Ok(ch)
    }

    fn name(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
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

struct AmqpConsumer {
    inner: lapin::Consumer,
    // Keeps the consumer's channel open as long as the consumer lives.
    _channel: Arc<Channel>,
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let d = self.inner.next().await?;
        Some(
            d.map_err(broker)
                .map(|d| Delivery::new(d.data, d.redelivered, Box::new(AmqpAcker(d.acker)))),
        )
    }
}

#[async_trait]
impl Bus for AmqpBus {
    fn backend(&self) -> &'static str {
        "amqp"
    }

    #[tracing::instrument(skip(self, payload), fields(size = payload.len()), err)]
    async fn publish(&self, queue: &str, payload: &[u8]) -> Result<(), BusError> {
        let name = self.name(queue);
        let mut ch = self.publisher.lock().await;
        if !ch.status().connected() {
            *ch = Self::confirming_channel(&self.conn).await?;
        }
        Self::declare(&ch, &name).await?;
        let confirm = ch
            .basic_publish(
                "".into(),
                name.as_str().into(),
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
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(BusError::Publish(format!(
                "broker did not confirm message to {name}"
            )))
        }
    }

    async fn consume(&self, queue: &str, tag: &str) -> Result<Box<dyn Consumer>, BusError> {
        let name = self.name(queue);
        let ch = self.conn.create_channel().await.map_err(broker)?;
        ch.basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(broker)?;
        Self::declare(&ch, &name).await?;
        let inner = ch
            .basic_consume(
                name.as_str().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        Ok(Box::new(AmqpConsumer {
            inner,
            _channel: Arc::new(ch),
        }))
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        let ch = self.conn.create_channel().await.map_err(broker)?;
        let n = Self::declare(&ch, &self.name(queue)).await?;
        let _ = ch.close(200, "done".into()).await;
        Ok(u64::from(n))
    }

    async fn health(&self) -> Result<(), BusError> {
        if self.conn.status().connected() {
            Ok(())
        } else {
            Err(BusError::Connection("amqp connection is closed".into()))
        }
    }
}
