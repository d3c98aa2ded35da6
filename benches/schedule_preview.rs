//! How fast a schedule evaluates: the preview endpoint's worst case (a
//! million steps of a nested warm-up → cosine spec), a single `lr(t)` as the
//! trainer calls it per step, and drawing a million-step chart.
//!
//! `cargo bench --bench schedule_preview -- --test` runs each once as a smoke test.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use lrlab::preview::to_svg;
use lrlab::schedule::Schedule;
use serde_json::json;

fn warmup_cosine() -> Schedule {
    let spec = json!({
        "kind": "warmup", "steps": 10_000,
        "then": {"kind": "cosine", "lr": 0.1, "final_lr": 1e-4, "max_steps": 990_000}
    });
    match Schedule::from_json(&spec) {
        Ok(s) => s,
        Err(e) => panic!("benchmark spec rejected: {e}"),
    }
}

fn preview(c: &mut Criterion) {
    let schedule = warmup_cosine();
    let mut group = c.benchmark_group("preview");
    group.sample_size(20);
    group.bench_function("warmup_cosine_1m_steps", |b| {
        b.iter(|| black_box(schedule.preview(black_box(1_000_000))))
    });
    group.finish();
}

fn single_step(c: &mut Criterion) {
    let schedule = warmup_cosine();
    c.bench_function("lr/warmup_cosine_single_step", |b| {
        b.iter(|| black_box(schedule.lr(black_box(500_000))))
    });
    let sequential = match Schedule::from_json(&json!({"kind": "sequential", "phases": [
        {"steps": 1000, "schedule": {"kind": "linear", "start_lr": 0.0, "end_lr": 0.1, "steps": 1000}},
        {"steps": 50_000, "schedule": {"kind": "cyclic", "base_lr": 0.001, "max_lr": 0.1, "step_size_up": 2000, "mode": "triangular2"}},
        {"schedule": {"kind": "cosine_restarts", "lr": 0.01, "period": 100, "period_mult": 2}}
    ]})) {
        Ok(s) => s,
        Err(e) => panic!("benchmark spec rejected: {e}"),
    };
    c.bench_function("lr/sequential_cyclic_restarts_single_step", |b| {
        b.iter(|| black_box(sequential.lr(black_box(u64::MAX / 3))))
    });
}

fn chart(c: &mut Criterion) {
    let rates = warmup_cosine().preview(1_000_000);
    let mut group = c.benchmark_group("svg");
    group.sample_size(10);
    group.bench_function("warmup_cosine_1m_steps", |b| {
        b.iter(|| black_box(to_svg(black_box(&rates), "warmup → cosine")))
    });
    group.finish();
}

criterion_group!(benches, preview, single_step, chart);
criterion_main!(benches);
