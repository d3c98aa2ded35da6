//! A job run by the service and the same spec run by `lrlab train` give the same metrics and
//! per-update records, bit for bit (only the timings differ).

use lrlab::cli::train::{run_train, TrainArgs};
use lrlab::train::{DeviceSpec, EpochMetrics, ScheduleUnit, StepRecord};
use serde_json::{json, Value};

use crate::support::spawn_app;

/// A CSV file as its header and rows of fields.
fn read_csv(path: &std::path::Path) -> (String, Vec<Vec<String>>) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let rows = lines
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn bits(field: &str) -> u64 {
    field
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {field}"))
        .to_bits()
}

fn json_bits(value: &Value) -> u64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
        .to_bits()
}

#[tokio::test]
async fn the_service_and_lrlab_train_give_identical_metrics_for_one_spec_and_seed() {
    let app = spawn_app(1).await;
    let schedule = json!({"kind": "cosine", "lr": 0.05, "final_lr": 0.001, "max_steps": 20});
    let id = app
        .submit(&json!({
            "epochs": 2,
            "batch_size": 32,
            "optimizer": {"momentum": 0.9, "nesterov": true, "weight_decay": 1e-4},
            "schedule": schedule,
            "schedule_unit": "step",
            "seed": 5,
            "train_limit": 400,
            "test_limit": 100
        }))
        .await;
    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let out = tempfile::tempdir().unwrap();
    let args = TrainArgs {
        schedule: schedule.to_string(),
        epochs: 2,
        batch_size: 32,
        unit: ScheduleUnit::Step,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        seed: 5,
        train_limit: Some(400),
        test_limit: Some(100),
        device: DeviceSpec::Cpu,
        data_dir: Some(app.dir.path().join("data")),
        no_download: true,
        out: out.path().to_path_buf(),
        restart: false,
    };
    tokio::task::spawn_blocking(move || run_train(args))
        .await
        .unwrap()
        .expect("lrlab train");

    // Every metric but the three timings, in the CSV's column order.
    let (header, cli_rows) = read_csv(&out.path().join("metrics.csv"));
    assert_eq!(header, EpochMetrics::CSV_HEADER);
    let columns: Vec<&str> = header.split(',').collect();
    let timings = ["seconds", "eval_seconds", "examples_per_sec"];
    let rows: Value = app
        .get(&format!("/v1/jobs/{id}/metrics"))
        .await
        .json()
        .await
        .unwrap();
    let api_rows = rows["epochs"].as_array().unwrap();
    assert_eq!(cli_rows.len(), 2);
    assert_eq!(api_rows.len(), 2);
    for (cli, api) in cli_rows.iter().zip(api_rows) {
        for (column, field) in columns.iter().zip(cli) {
            if !timings.contains(column) {
                assert_eq!(
                    bits(field),
                    json_bits(&api[*column]),
                    "epoch {}: {column}",
                    api["epoch"]
                );
            }
        }
    }

    let (header, cli_steps) = read_csv(&out.path().join("steps.csv"));
    assert_eq!(header, StepRecord::CSV_HEADER);
    let page: Value = app
        .get(&format!("/v1/jobs/{id}/steps?limit=100000"))
        .await
        .json()
        .await
        .unwrap();
    let api_steps = page["steps"].as_array().unwrap();
    assert_eq!(cli_steps.len(), 2 * 400usize.div_ceil(32));
    assert_eq!(api_steps.len(), cli_steps.len());
    for (cli, api) in cli_steps.iter().zip(api_steps) {
        // epoch,step,lr,loss
        assert_eq!(cli[1].parse::<u64>().ok(), api["step"].as_u64());
        assert_eq!(
            bits(&cli[2]),
            json_bits(&api["lr"]),
            "lr of step {}",
            api["step"]
        );
        assert_eq!(
            bits(&cli[3]),
            json_bits(&api["loss"]),
            "loss of step {}",
            api["step"]
        );
    }
    // A cosine over updates: the rate changes from one update to the next.
    assert_ne!(cli_steps[0][2], cli_steps[1][2]);
    app.shutdown().await;
}
