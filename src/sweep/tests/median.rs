use crate::sweep::{
    Action, ConfigState, Decision, Median, MedianParams, Metric, Mode, Observation, Stopper,
    StopperError, StoppingParams,
};

fn params(n_startup: u32, warmup_epochs: u32, synchronous: bool) -> MedianParams {
    MedianParams {
        metric: Metric::TestAcc,
        mode: Mode::Max,
        n_startup,
        warmup_epochs,
        synchronous,
    }
}

fn stops(decisions: &[Decision]) -> Vec<(u32, usize, f64)> {
    decisions
        .iter()
        .map(|d| {
            assert_eq!(d.action, Action::Stop, "the median rule only stops");
            (d.rung_epoch, d.config, d.cutoff)
        })
        .collect()
}

#[test]
fn a_config_worse_than_the_median_of_the_others_is_stopped() {
    let mut median = Median::new(params(2, 1, false), vec![5; 4]).unwrap();
    // Epoch 1 is the warm-up: nothing is judged however bad.
    for (config, value) in [(0, 0.9), (1, 0.1), (2, 0.1), (3, 0.1)] {
        assert!(median.record(config, 1, value).unwrap().is_empty());
    }
    // Epoch 2: the first two arrivals have fewer than 2 others to compare with.
    assert!(median.record(0, 2, 0.5).unwrap().is_empty());
    assert!(median.record(1, 2, 0.6).unwrap().is_empty());
    // The third lets everyone be judged: 0 vs median(0.6, 0.4) = 0.5 — not worse;
    // 1 vs median(0.5, 0.4) = 0.45; 2 vs median(0.5, 0.6) = 0.55 — worse.
    assert_eq!(stops(&median.record(2, 2, 0.4).unwrap()), [(2, 2, 0.55)]);
    // The fourth: median of 0.5, 0.6 and the stopped config's 0.4 is 0.5.
    assert_eq!(stops(&median.record(3, 2, 0.45).unwrap()), [(2, 3, 0.5)]);
    assert_eq!(median.state(3), Some(ConfigState::Stopped { epoch: 2 }));
    // A stopped config's member that ran ahead: ignored, and not in later medians.
    assert!(median.record(2, 3, 0.99).unwrap().is_empty());
    assert!(median.record(0, 3, 0.7).unwrap().is_empty());
    assert!(
        median.record(1, 3, 0.8).unwrap().is_empty(),
        "only one other at epoch 3"
    );
}

#[test]
fn no_config_is_stopped_at_its_last_epoch_or_when_equal_to_the_median() {
    let mut median = Median::new(params(1, 0, false), vec![2, 3]).unwrap();
    median.record(1, 1, 0.5).unwrap();
    assert!(
        median.record(0, 1, 0.5).unwrap().is_empty(),
        "equal is not worse"
    );
    median.record(1, 2, 0.9).unwrap();
    assert!(
        median.record(0, 2, 0.1).unwrap().is_empty(),
        "epoch 2 is config 0's last"
    );
    assert_eq!(median.state(0), Some(ConfigState::Completed));
}

#[test]
fn an_even_number_of_others_takes_the_mean_of_the_middle_two() {
    let mut median = Median::new(params(1, 0, true), vec![3; 3]).unwrap();
    median.record(0, 1, 0.4).unwrap();
    median.record(1, 1, 0.6).unwrap();
    let decisions = median.record(2, 1, 0.45).unwrap();
    // 2 vs median(0.4, 0.6) = 0.5: stopped; 0 vs median(0.6, 0.45) = 0.525: stopped too.
    assert_eq!(stops(&decisions), [(1, 0, 0.525), (1, 2, 0.5)]);
}

#[test]
fn synchronous_median_judges_an_epoch_once_every_running_config_has_reported_it() {
    let mut median = Median::new(params(2, 1, true), vec![5; 4]).unwrap();
    for config in 0..4 {
        median.record(config, 1, 0.3).unwrap();
    }
    assert!(median.record(0, 2, 0.5).unwrap().is_empty());
    assert!(median.record(1, 2, 0.6).unwrap().is_empty());
    assert!(median.record(2, 2, 0.4).unwrap().is_empty());
    // Complete: 2 vs median(0.5, 0.6, 0.45) = 0.5; 3 vs median(0.5, 0.6, 0.4) = 0.5.
    assert_eq!(
        stops(&median.record(3, 2, 0.45).unwrap()),
        [(2, 2, 0.5), (2, 3, 0.5)]
    );
    // Epoch 3 waits for configs 0 and 1 only; then each has one other: not judged.
    assert!(median.record(0, 3, 0.7).unwrap().is_empty());
    assert!(median.record(1, 3, 0.1).unwrap().is_empty());
}

#[test]
fn synchronously_a_withdrawal_can_complete_an_epoch() {
    let mut median = Median::new(params(1, 0, true), vec![3; 3]).unwrap();
    median.record(0, 1, 0.2).unwrap();
    median.record(1, 1, 0.6).unwrap();
    assert_eq!(stops(&median.withdraw(2).unwrap()), [(1, 0, 0.6)]);
    assert!(matches!(
        median.record(2, 1, 0.9),
        Err(StopperError::NotRunning { config: 2, .. })
    ));
}

#[test]
fn losses_stop_the_high_ones() {
    let mut median = Median::new(
        MedianParams {
            metric: Metric::TestLoss,
            mode: Mode::Min,
            ..params(2, 0, false)
        },
        vec![4; 3],
    )
    .unwrap();
    median.record(0, 1, 0.5).unwrap();
    median.record(1, 1, 0.6).unwrap();
    assert_eq!(
        stops(&median.record(2, 1, f64::NAN).unwrap()),
        [(1, 2, 0.55)]
    );
}

#[test]
fn replaying_the_median_rule_repeats_no_decision() {
    let p = StoppingParams::Median(params(2, 1, false));
    let v = |config, epoch, value| Observation::Value {
        config,
        epoch,
        value,
    };
    let observations = [
        v(0, 1, 0.3),
        v(1, 1, 0.3),
        v(2, 1, 0.3),
        v(0, 2, 0.5),
        v(1, 2, 0.6),
        v(2, 2, 0.4),
        v(2, 3, 0.9),
        Observation::Withdrawn { config: 1 },
        Observation::Finished,
    ];
    let mut live = Stopper::new(p, vec![5; 3]).unwrap();
    let mut stored = Vec::new();
    for o in &observations {
        stored.extend(live.observe(o).unwrap());
    }
    assert_eq!(stops(&stored), [(2, 2, 0.55)]);
    let (_, new) = Stopper::replay(p, vec![5; 3], &observations, &stored).unwrap();
    assert!(new.is_empty());
    let (_, new) = Stopper::replay(p, vec![5; 3], &observations, &[]).unwrap();
    assert_eq!(stops(&new), [(2, 2, 0.55)]);
    assert_eq!(live.record(0, 3, 0.5), Err(StopperError::Finished));
}
