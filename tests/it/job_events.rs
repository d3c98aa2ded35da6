//! Server-Sent Events of a job: progress, every epoch row, and done — live,
//! and replayed to a client that connects late.

use std::time::Duration;

use crate::support::{small_job, spawn_app};
use futures::StreamExt;
use serde_json::Value;

/// Reads SSE frames from `response` until a `done` event (or the stream ends).
async fn collect_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk.expect("SSE chunk")));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                let done = name == "done";
                events.push((name, serde_json::from_str(&data).expect("event JSON")));
                if done {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the event stream should end with `done`");
    events
}

fn epochs_of(events: &[(String, Value)]) -> Vec<i64> {
    events
        .iter()
        .filter(|(name, _)| name == "epoch")
        .map(|(_, data)| data["epoch"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_client_receives_progress_every_epoch_row_and_done() {
    let app = spawn_app(1).await;
    let id = app.submit(&small_job(3)).await;
    let response = app.get(&format!("/v1/jobs/{id}/events")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = collect_events(response).await;

    assert_eq!(events[0].0, "status", "the current state comes first");
    assert_eq!(events[0].1["id"], id);
    assert_eq!(
        epochs_of(&events),
        vec![1, 2, 3],
        "each epoch exactly once, in order"
    );
    assert!(events
        .iter()
        .any(|(name, data)| name == "progress" && data["total_steps"].as_u64().unwrap() > 0));
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(data["status"], "succeeded");
    // Every epoch event carries the full metrics row.
    let epoch = events.iter().find(|(name, _)| name == "epoch").unwrap();
    for field in [
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
        "seconds",
    ] {
        assert!(
            epoch.1[field].is_number(),
            "{field} missing from {}",
            epoch.1
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_client_that_connects_after_the_end_gets_the_whole_story() {
    let app = spawn_app(1).await;
    let id = app.submit(&small_job(2)).await;
    app.wait_finished(id).await;
    let events = collect_events(app.get(&format!("/v1/jobs/{id}/events")).await).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, vec!["status", "epoch", "epoch", "done"]);
    assert_eq!(events[0].1["status"], "succeeded");
    app.shutdown().await;
}

#[tokio::test]
async fn canceling_a_queued_job_ends_its_stream() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    let response = app.get(&format!("/v1/jobs/{id}/events")).await;
    let cancel = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .send();
    let (events, canceled) = tokio::join!(collect_events(response), cancel);
    assert_eq!(canceled.unwrap().status(), 200);
    let (last, data) = events.last().unwrap();
    assert_eq!(
        (last.as_str(), &data["status"]),
        ("done", &Value::from("canceled"))
    );
    app.shutdown().await;
}
