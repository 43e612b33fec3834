//! The RabbitMQ adapter against the real broker.

use std::time::Duration;

use restoreflow_core::bus::{AmqpBus, Bus};
use restoreflow_tests::unique;

fn url() -> String {
    std::env::var("RESTOREFLOW_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn next(c: &mut Box<dyn restoreflow_core::bus::Consumer>) -> restoreflow_core::bus::Delivery {
    tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .expect("a delivery arrives")
        .expect("consumer open")
        .expect("delivery ok")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_confirms_requeues_and_dead_letters() {
    let prefix = format!("t{}.", unique());
    let bus = AmqpBus::connect(&url(), &prefix, 1).await.unwrap();
    bus.health().await.unwrap();
    bus.publish("jobs.test", b"first").await.unwrap();
    bus.publish("jobs.test", b"second").await.unwrap();
    assert_eq!(bus.depth("jobs.test").await.unwrap(), 2);

    let mut c = bus.consume("jobs.test", "t").await.unwrap();
    let d = next(&mut c).await;
    assert_eq!(d.payload, b"first");
    assert!(!d.redelivered);
    d.requeue().await.unwrap();
    let d = next(&mut c).await;
    assert_eq!(d.payload, b"first");
    assert!(d.redelivered, "a requeued message is marked redelivered");
    d.reject().await.unwrap();
    let d = next(&mut c).await;
    assert_eq!(d.payload, b"second");
    d.ack().await.unwrap();

    // The rejected message sits in the dead-letter queue.
    let mut dead = bus.consume("jobs.test.dead", "t").await.unwrap();
    let d = next(&mut dead).await;
    assert_eq!(d.payload, b"first");
    d.ack().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_messages_survive_a_consumer_that_never_acks() {
    let prefix = format!("t{}.", unique());
    let bus = AmqpBus::connect(&url(), &prefix, 1).await.unwrap();
    bus.publish("jobs.test", b"job").await.unwrap();
    {
        // A worker takes the message and dies without acking.
        let other = AmqpBus::connect(&url(), &prefix, 1).await.unwrap();
        let mut c = other.consume("jobs.test", "doomed").await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.payload, b"job");
        drop(d);
        drop(c);
        other.close().await;
    }
    let mut c = bus.consume("jobs.test", "survivor").await.unwrap();
    let d = next(&mut c).await;
    assert_eq!(d.payload, b"job");
    assert!(d.redelivered);
    d.ack().await.unwrap();
}
