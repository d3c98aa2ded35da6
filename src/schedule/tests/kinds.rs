//! Values of every kind at its boundaries.
//!
//! The expected numbers were computed with python3 (no torch installed) by a
//! separate reimplementation: the table for the plain kinds, and
//! PyTorch's documented `get_lr()` for CyclicLR and OneCycleLR (float phase
//! ends, `cycle = floor(1 + t/total)`), and its one-step-at-a-time `step()`
//! for CosineAnnealingWarmRestarts (`T_cur += 1; if T_cur >= T_i: T_cur -=
//! T_i; T_i *= T_mult`), which is independent of our closed-form period
//! lookup. They were pasted here as literals.

use serde_json::json;

use super::{assert_rates, schedule};

#[test]
fn constant_is_the_same_at_every_step() {
    let s = schedule(json!({"kind": "constant", "lr": 0.1}));
    assert_rates(&s, &[0, 1, 1_000_000, u64::MAX], &[0.1, 0.1, 0.1, 0.1]);
}

#[test]
fn inverse_power_with_default_power_is_the_square_root_schedule() {
    let s = schedule(json!({"kind": "inverse_power", "lr": 0.5}));
    assert_rates(
        &s,
        &[0, 3, 99, 1_000_000],
        &[0.5, 0.25, 0.05, 0.0004999997500001875],
    );
}

#[test]
fn factor_decays_per_step_down_to_min_lr() {
    // The chapter's DemoFactorTracker(0.9, 1e-2, 2).
    let s = schedule(json!({"kind": "factor", "lr": 2.0, "factor": 0.9, "min_lr": 1e-2}));
    assert_rates(
        &s,
        &[0, 1, 10, 50, 51, 100],
        &[
            2.0,
            1.8,
            0.6973568802000002,
            0.01030755041464024,
            0.01,
            0.01,
        ],
    );
}

#[test]
fn growing_factor_saturates_at_f64_max_instead_of_infinity() {
    let s = schedule(json!({"kind": "factor", "lr": 1.0, "factor": 2.0}));
    assert_eq!(s.lr(10), 1024.0);
    assert_eq!(s.lr(2000), f64::MAX);
    assert_eq!(s.lr(u64::MAX), f64::MAX);
    let zero = schedule(json!({"kind": "factor", "lr": 0.0, "factor": 2.0}));
    assert_eq!(zero.lr(u64::MAX), 0.0, "0·∞ must not become NaN");
}

#[test]
fn step_drops_every_step_size_steps() {
    let s = schedule(json!({"kind": "step", "lr": 0.1, "step_size": 30, "factor": 0.1}));
    assert_rates(
        &s,
        &[0, 29, 30, 59, 60, 95],
        &[
            0.1,
            0.1,
            0.010000000000000002,
            0.010000000000000002,
            0.0010000000000000002,
            0.00010000000000000003,
        ],
    );
}

#[test]
fn multi_factor_drops_at_the_milestone_step_itself() {
    // The chapter's MultiFactorTracker example (milestones 15 and 30, factor 0.5),
    // with PyTorch MultiStepLR's convention: lowered at t == milestone.
    let s =
        schedule(json!({"kind": "multi_factor", "lr": 0.5, "milestones": [15, 30], "factor": 0.5}));
    assert_rates(
        &s,
        &[0, 14, 15, 29, 30, 31],
        &[0.5, 0.5, 0.25, 0.25, 0.125, 0.125],
    );
    let none =
        schedule(json!({"kind": "multi_factor", "lr": 0.5, "milestones": [], "factor": 0.5}));
    assert_rates(&none, &[0, 1_000], &[0.5, 0.5]);
}

#[test]
fn cosine_without_warmup_reaches_final_lr_at_max_steps() {
    // The chapter's DemoCosineTracker(0.5, 0.01, 20).
    let s = schedule(json!({"kind": "cosine", "lr": 0.5, "final_lr": 0.01, "max_steps": 20}));
    assert_rates(
        &s,
        &[0, 1, 10, 19, 20, 21],
        &[
            0.5,
            0.49698364344580875,
            0.255,
            0.013016356554191274,
            0.01,
            0.01,
        ],
    );
}

#[test]
fn cosine_warmup_squeezes_the_cosine_into_the_remaining_steps() {
    let s = schedule(json!({
        "kind": "cosine", "lr": 0.5, "final_lr": 0.01, "max_steps": 20,
        "warmup_steps": 5, "warmup_begin_lr": 0.1
    }));
    assert_rates(
        &s,
        &[0, 1, 4, 5, 6, 12, 19, 20, 21],
        &[
            0.1,
            0.18,
            0.42000000000000004,
            0.5,
            0.4946461621797824,
            0.28060947350057514,
            0.015353837820217606,
            0.01,
            0.01,
        ],
    );
}

#[test]
fn polynomial_reaches_final_lr_at_max_steps() {
    let s = schedule(
        json!({"kind": "polynomial", "lr": 0.1, "final_lr": 0.001, "max_steps": 10, "power": 2.0}),
    );
    assert_rates(
        &s,
        &[0, 5, 9, 10, 11],
        &[
            0.1,
            0.025750000000000002,
            0.0019899999999999996,
            0.001,
            0.001,
        ],
    );
    let sqrt = schedule(json!({"kind": "polynomial", "lr": 0.1, "max_steps": 10, "power": 0.5}));
    assert_rates(
        &sqrt,
        &[0, 1, 9, 10],
        &[0.1, 0.09486832980505139, 0.03162277660168379, 0.0],
    );
}

#[test]
fn linear_ramps_then_holds_end_lr() {
    let s = schedule(json!({"kind": "linear", "start_lr": 0.1, "end_lr": 0.01, "steps": 10}));
    assert_rates(
        &s,
        &[0, 5, 9, 10, 11],
        &[0.1, 0.055, 0.019000000000000003, 0.01, 0.01],
    );
    let up = schedule(json!({"kind": "linear", "start_lr": 0.0, "end_lr": 1.0, "steps": 4}));
    assert_rates(&up, &[0, 1, 3, 4, u64::MAX], &[0.0, 0.25, 0.75, 1.0, 1.0]);
}

#[test]
fn cosine_restarts_with_doubling_periods_restart_at_period_edges() {
    // Periods 10, 20, 40, 80: restarts at 10, 30, 70, 150.
    let s = schedule(
        json!({"kind": "cosine_restarts", "lr": 0.1, "final_lr": 0.001, "period": 10, "period_mult": 2}),
    );
    assert_rates(
        &s,
        &[0, 1, 9, 10, 11, 29, 30, 69, 70, 150],
        &[
            0.1,
            0.09757729755661011,
            0.0034227024433899004,
            0.1,
            0.09939057285945932,
            0.001609427140540686,
            0.1,
            0.0011525919802101658,
            0.1,
            0.1,
        ],
    );
}

#[test]
fn cosine_restarts_with_fixed_period_repeat() {
    let s =
        schedule(json!({"kind": "cosine_restarts", "lr": 0.1, "final_lr": 0.001, "period": 10}));
    assert_rates(
        &s,
        &[0, 5, 9, 10, 19, 20, 50],
        &[
            0.1,
            0.0505,
            0.0034227024433899004,
            0.1,
            0.0034227024433899004,
            0.1,
            0.1,
        ],
    );
}

#[test]
fn cosine_restarts_with_tripling_periods() {
    // Periods 3, 9, 27, 81, 243: restarts at 3, 12, 39, 120.
    let s = schedule(json!({"kind": "cosine_restarts", "lr": 0.1, "period": 3, "period_mult": 3}));
    assert_rates(
        &s,
        &[0, 2, 3, 11, 12, 38, 39, 199],
        &[
            0.1,
            0.025000000000000012,
            0.1,
            0.0030153689607045845,
            0.1,
            0.0003380821129028489,
            0.1,
            0.07611114781758693,
        ],
    );
    // Huge steps loop over at most ~64 periods and stay in range.
    let r = s.lr(u64::MAX);
    assert!(r.is_finite() && (0.0..=0.1).contains(&r));
}

const CYCLIC_TS: [u64; 16] = [0, 1, 3, 4, 5, 7, 9, 10, 11, 14, 15, 19, 20, 24, 25, 30];

fn cyclic(mode: &str) -> super::Schedule {
    schedule(json!({
        "kind": "cyclic", "base_lr": 0.001, "max_lr": 0.006,
        "step_size_up": 4, "step_size_down": 6, "mode": mode, "gamma": 0.99
    }))
}

#[test]
fn cyclic_triangular_matches_pytorch() {
    assert_rates(
        &cyclic("triangular"),
        &CYCLIC_TS,
        &[
            0.001,
            0.002250000000000001,
            0.004750000000000001,
            0.005999999999999999,
            0.005166666666666667,
            0.0035000000000000005,
            0.0018333333333333342,
            0.001,
            0.002250000000000001,
            0.005999999999999999,
            0.005166666666666667,
            0.0018333333333333342,
            0.001,
            0.005999999999999999,
            0.005166666666666667,
            0.001,
        ],
    );
}

#[test]
fn cyclic_triangular2_halves_the_amplitude_each_cycle() {
    assert_rates(
        &cyclic("triangular2"),
        &CYCLIC_TS,
        &[
            0.001,
            0.002250000000000001,
            0.004750000000000001,
            0.005999999999999999,
            0.005166666666666667,
            0.0035000000000000005,
            0.0018333333333333342,
            0.001,
            0.0016250000000000006,
            0.0034999999999999996,
            0.0030833333333333333,
            0.0014166666666666672,
            0.001,
            0.00225,
            0.0020416666666666665,
            0.001,
        ],
    );
    // step_size_down defaults to step_size_up: peaks at 5, 15, 25, 35.
    let s = schedule(
        json!({"kind": "cyclic", "base_lr": 0.001, "max_lr": 0.006, "step_size_up": 5, "mode": "triangular2"}),
    );
    assert_rates(
        &s,
        &[0, 5, 10, 15, 20, 25, 30, 35],
        &[
            0.001,
            0.006,
            0.001,
            0.0035,
            0.001,
            0.0022500000000000003,
            0.001,
            0.0016250000000000001,
        ],
    );
}

#[test]
fn cyclic_exp_range_scales_by_gamma_per_step() {
    assert_rates(
        &cyclic("exp_range"),
        &CYCLIC_TS,
        &[
            0.001,
            0.002237500000000001,
            0.004638621250000001,
            0.005802980049999999,
            0.00496245854125,
            0.0033301633697674755,
            0.0017612643729030346,
            0.001,
            0.0021191728178233966,
            0.0053437290638448905,
            0.0045835764776720345,
            0.0016884738531963229,
            0.001,
            0.004928390704036093,
            0.004240922330829778,
            0.001,
        ],
    );
}

#[test]
fn cyclic_exp_range_with_growing_gamma_saturates() {
    let s = schedule(
        json!({"kind": "cyclic", "base_lr": 0.0, "max_lr": 1.0, "step_size_up": 3, "mode": "exp_range", "gamma": 2.0}),
    );
    assert_eq!(s.lr(3000 * 6 + 3), f64::MAX);
    assert_eq!(
        s.lr(3000 * 6),
        0.0,
        "amplitude 0 times an infinite scale must stay 0"
    );
}

const ONE_CYCLE_TS: [u64; 12] = [0, 1, 14, 28, 29, 30, 31, 50, 98, 99, 100, 1000];

#[test]
fn one_cycle_cos_matches_pytorch_and_holds_the_last_value() {
    let s = schedule(json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100}));
    assert_rates(
        &s,
        &ONE_CYCLE_TS,
        &[
            0.0040000000000000036,
            0.004281378056590748,
            0.04940133238789996,
            0.09971862194340926,
            0.1,
            0.09994965352845243,
            0.09979871550490317,
            0.0793893450575732,
            5.07464715475788e-05,
            4e-07,
            4e-07,
            4e-07,
        ],
    );
}

#[test]
fn one_cycle_linear_matches_pytorch() {
    let s = schedule(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "anneal": "linear"}),
    );
    assert_rates(
        &s,
        &ONE_CYCLE_TS,
        &[
            0.004,
            0.007310344827586207,
            0.0503448275862069,
            0.0966896551724138,
            0.1,
            0.09857143428571429,
            0.09714286857142858,
            0.07000012,
            0.0014289657142857043,
            3.999999999976245e-07,
            3.999999999976245e-07,
            3.999999999976245e-07,
        ],
    );
}

const THREE_PHASE_TS: [u64; 12] = [0, 1, 23, 24, 25, 47, 48, 49, 50, 98, 99, 100];

#[test]
fn one_cycle_three_phase_cos_matches_pytorch() {
    let s = schedule(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.25, "three_phase": true}),
    );
    assert_rates(
        &s,
        &THREE_PHASE_TS,
        &[
            0.0040000000000000036,
            0.004410646654057104,
            0.0995893533459429,
            0.1,
            0.0995893533459429,
            0.004410646654057102,
            0.004,
            0.003996207036808341,
            0.003984842535241937,
            4.1929631916591995e-06,
            4e-07,
            4e-07,
        ],
    );
}

#[test]
fn one_cycle_three_phase_linear_matches_pytorch() {
    let s = schedule(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.25, "anneal": "linear", "three_phase": true}),
    );
    assert_rates(
        &s,
        &THREE_PHASE_TS,
        &[
            0.004,
            0.008,
            0.09600000000000002,
            0.1,
            0.096,
            0.007999999999999993,
            0.0040000000000000036,
            0.0039215764705882354,
            0.003843152941176471,
            7.882352941176486e-05,
            4.0000000000022656e-07,
            4.0000000000022656e-07,
        ],
    );
}

#[test]
fn one_cycle_with_fractional_phase_ends_matches_pytorch() {
    // pct_start·total − 1 = 1.1: the peak falls between steps.
    let s = schedule(
        json!({"kind": "one_cycle", "max_lr": 1.0, "total_steps": 7, "div_factor": 10.0, "final_div_factor": 100.0}),
    );
    assert_rates(
        &s,
        &[0, 1, 2, 3, 6, 7],
        &[
            0.09999999999999998,
            0.9817718381265238,
            0.9191250083934744,
            0.6730098446834433,
            0.001,
            0.001,
        ],
    );
    // Three phases ending at 2.5, 5.0 and 9.
    let s = schedule(
        json!({"kind": "one_cycle", "max_lr": 1.0, "total_steps": 10, "pct_start": 0.35, "div_factor": 10.0, "final_div_factor": 100.0, "three_phase": true}),
    );
    assert_rates(
        &s,
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[
            0.09999999999999998,
            0.41094235253127365,
            0.9140576474687263,
            0.9140576474687263,
            0.41094235253127376,
            0.1,
            0.0855017856687341,
            0.0505,
            0.0154982143312659,
            0.001,
            0.001,
        ],
    );
}

#[test]
fn warmup_offsets_the_wrapped_schedule() {
    // Linear from 0 to then(0) = 0.5 over 5 steps, then the 20-step cosine
    // from its own step 0 (values from the cosine test above).
    let s = schedule(json!({
        "kind": "warmup", "steps": 5,
        "then": {"kind": "cosine", "lr": 0.5, "final_lr": 0.01, "max_steps": 20}
    }));
    assert_rates(
        &s,
        &[0, 1, 4, 5, 6, 15, 24, 25, 26],
        &[
            0.0,
            0.1,
            0.4,
            0.5,
            0.49698364344580875,
            0.255,
            0.013016356554191274,
            0.01,
            0.01,
        ],
    );
}

#[test]
fn constant_warmup_holds_begin_lr() {
    let s = schedule(json!({
        "kind": "warmup", "steps": 3, "begin_lr": 0.01, "mode": "constant",
        "then": {"kind": "step", "lr": 0.1, "step_size": 2, "factor": 0.5}
    }));
    assert_rates(&s, &[0, 2, 3, 4, 5, 6], &[0.01, 0.01, 0.1, 0.1, 0.05, 0.05]);
}

#[test]
fn sequential_runs_each_phase_from_its_own_step_zero() {
    let s = schedule(json!({"kind": "sequential", "phases": [
        {"steps": 10, "schedule": {"kind": "constant", "lr": 0.1}},
        {"steps": 20, "schedule": {"kind": "linear", "start_lr": 0.1, "end_lr": 0.01, "steps": 10}},
        {"schedule": {"kind": "multi_factor", "lr": 0.01, "milestones": [5], "factor": 0.1}}
    ]}));
    // Phase 2 starts at 10, the third at 30; the last phase runs on for ever.
    assert_rates(
        &s,
        &[0, 9, 10, 15, 19, 20, 29, 30, 34, 35, u64::MAX],
        &[
            0.1,
            0.1,
            0.1,
            0.055,
            0.019000000000000003,
            0.01,
            0.01,
            0.01,
            0.01,
            0.001,
            0.001,
        ],
    );
}
