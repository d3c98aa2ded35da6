use crate::sweep::{
    Action, Asha, AshaParams, ConfigState, Decision, Metric, Mode, Observation, Stopper,
    StopperError, StoppingParams,
};

fn params(grace: u32, eta: u32, max_t: u32, mode: Mode, synchronous: bool) -> AshaParams {
    AshaParams {
        metric: if mode == Mode::Max {
            Metric::TestAcc
        } else {
            Metric::TestLoss
        },
        mode,
        grace_period: grace,
        reduction_factor: eta,
        max_t,
        synchronous,
    }
}

/// (rung, config, action, cutoff) of each decision.
fn summary(decisions: &[Decision]) -> Vec<(u32, usize, Action, f64)> {
    decisions
        .iter()
        .map(|d| (d.rung_epoch, d.config, d.action, d.cutoff))
        .collect()
}

#[test]
fn rungs_lie_at_r_times_powers_of_eta_up_to_max_t() {
    assert_eq!(params(2, 3, 30, Mode::Max, true).rungs(), [2, 6, 18]);
    assert_eq!(params(1, 2, 8, Mode::Max, true).rungs(), [1, 2, 4, 8]);
    assert_eq!(params(5, 4, 5, Mode::Max, true).rungs(), [5]);
    assert_eq!(
        params(4_000_000_000, 3, u32::MAX, Mode::Max, true).rungs(),
        [4_000_000_000]
    );
    assert!(
        params(1, 1, 3, Mode::Max, true).rungs().len() == 1,
        "η = 1 must not loop"
    );
}

/// The asynchronous script: η = 3, rungs 1, 3, 9; six configs of 9 epochs.
fn async_script() -> Vec<Observation> {
    let v = |config, epoch, value| Observation::Value {
        config,
        epoch,
        value,
    };
    vec![
        v(0, 1, 0.9),
        v(1, 1, 0.8),
        v(2, 1, 0.7),
        v(3, 1, 0.1),
        v(4, 1, 0.2),
        v(5, 1, 0.3),
        v(0, 2, 0.91),
        v(0, 3, 0.92),
        v(1, 2, 0.83),
        v(1, 3, 0.85),
        Observation::Finished,
    ]
}

fn async_engine() -> Asha {
    Asha::new(params(1, 3, 9, Mode::Max, false), vec![9; 6]).unwrap()
}

#[test]
fn asynchronous_asha_pauses_and_later_resumes_a_config() {
    let mut asha = async_engine();
    assert_eq!(asha.rungs(), [1, 3, 9]);
    // The first arrival is the top max(1, ⌊1/3⌋) = 1 of one: it continues.
    assert_eq!(
        summary(&asha.record(0, 1, 0.9).unwrap()),
        [(1, 0, Action::Continue, 0.9)]
    );
    // n = 2…5: the top is still the one best (⌊n/3⌋ ≤ 1), so they pause.
    assert_eq!(
        summary(&asha.record(1, 1, 0.8).unwrap()),
        [(1, 1, Action::Pause, 0.9)]
    );
    assert_eq!(
        summary(&asha.record(2, 1, 0.7).unwrap()),
        [(1, 2, Action::Pause, 0.9)]
    );
    assert_eq!(
        summary(&asha.record(3, 1, 0.1).unwrap()),
        [(1, 3, Action::Pause, 0.9)]
    );
    assert_eq!(
        summary(&asha.record(4, 1, 0.2).unwrap()),
        [(1, 4, Action::Pause, 0.9)]
    );
    assert_eq!(asha.state(1), Some(ConfigState::Paused { epoch: 1 }));
    // n = 6: the top 2 are configs 0 and 1; the newcomer pauses and config 1 resumes.
    assert_eq!(
        summary(&asha.record(5, 1, 0.3).unwrap()),
        [(1, 5, Action::Pause, 0.8), (1, 1, Action::Resume, 0.8)]
    );
    assert_eq!(asha.state(1), Some(ConfigState::Running));
    // Epochs between rungs decide nothing.
    assert!(asha.record(0, 2, 0.91).unwrap().is_empty());
    assert_eq!(
        summary(&asha.record(0, 3, 0.92).unwrap()),
        [(3, 0, Action::Continue, 0.92)]
    );
    assert!(asha.record(1, 2, 0.83).unwrap().is_empty());
    assert_eq!(
        summary(&asha.record(1, 3, 0.85).unwrap()),
        [(3, 1, Action::Pause, 0.92)]
    );
    // The end: the paused configs stop at their rungs, with the cutoff they missed.
    let stops = asha.finish();
    assert_eq!(
        summary(&stops),
        [
            (3, 1, Action::Stop, 0.92),
            (1, 2, Action::Stop, 0.8),
            (1, 3, Action::Stop, 0.8),
            (1, 4, Action::Stop, 0.8),
            (1, 5, Action::Stop, 0.8),
        ]
    );
    assert_eq!(stops[0].value, 0.85);
    assert_eq!(asha.state(2), Some(ConfigState::Stopped { epoch: 1 }));
    assert_eq!(asha.state(0), Some(ConfigState::Running));
    assert!(asha.finish().is_empty(), "finish decides once");
    assert_eq!(asha.record(0, 4, 0.9), Err(StopperError::Finished));
}

#[test]
fn synchronous_asha_decides_a_rung_once_every_config_has_reached_it() {
    let mut asha = Asha::new(params(1, 2, 4, Mode::Max, true), vec![4; 4]).unwrap();
    assert!(asha.record(0, 1, 0.5).unwrap().is_empty());
    assert!(asha.record(1, 1, 0.7).unwrap().is_empty());
    assert!(asha.record(2, 1, 0.6).unwrap().is_empty());
    // The fourth arrival completes the rung: the top ⌊4/2⌋ = 2 continue.
    assert_eq!(
        summary(&asha.record(3, 1, 0.4).unwrap()),
        [
            (1, 0, Action::Pause, 0.6),
            (1, 1, Action::Continue, 0.6),
            (1, 2, Action::Continue, 0.6),
            (1, 3, Action::Pause, 0.6),
        ]
    );
    // Rung 2 waits for configs 1 and 2 only (0 and 3 are paused below it).
    assert!(asha.record(1, 2, 0.8).unwrap().is_empty());
    assert_eq!(
        summary(&asha.record(2, 2, 0.75).unwrap()),
        [(2, 1, Action::Continue, 0.8), (2, 2, Action::Pause, 0.8)]
    );
    assert!(asha.record(1, 3, 0.85).unwrap().is_empty());
    // Rung 4 is config 1's last epoch: recorded, but nothing to decide.
    assert!(asha.record(1, 4, 0.9).unwrap().is_empty());
    assert_eq!(asha.state(1), Some(ConfigState::Completed));
    assert_eq!(
        summary(&asha.finish()),
        [
            (1, 0, Action::Stop, 0.6),
            (2, 2, Action::Stop, 0.8),
            (1, 3, Action::Stop, 0.6)
        ]
    );
}

#[test]
fn at_least_one_config_continues_when_fewer_than_eta_reach_a_rung() {
    let mut asha = Asha::new(params(1, 3, 3, Mode::Max, true), vec![3; 2]).unwrap();
    assert!(asha.record(0, 1, 0.2).unwrap().is_empty());
    // ⌊2/3⌋ = 0, but max(1, 0) = 1: the better one goes on.
    assert_eq!(
        summary(&asha.record(1, 1, 0.3).unwrap()),
        [(1, 0, Action::Pause, 0.3), (1, 1, Action::Continue, 0.3)]
    );
}

#[test]
fn losses_are_minimized() {
    let mut asha = Asha::new(params(1, 2, 2, Mode::Min, false), vec![2; 4]).unwrap();
    assert_eq!(
        summary(&asha.record(0, 1, 0.5).unwrap()),
        [(1, 0, Action::Continue, 0.5)]
    );
    assert_eq!(
        summary(&asha.record(1, 1, 0.3).unwrap()),
        [(1, 1, Action::Continue, 0.3)]
    );
    assert_eq!(
        summary(&asha.record(2, 1, 0.9).unwrap()),
        [(1, 2, Action::Pause, 0.3)]
    );
    // n = 4: top 2 = 0.3 and 0.4; config 0 (0.5) had continued already.
    assert_eq!(
        summary(&asha.record(3, 1, 0.4).unwrap()),
        [(1, 3, Action::Continue, 0.4)]
    );
}

#[test]
fn a_nan_ranks_last_and_ties_go_to_the_earlier_arrival() {
    let mut asha = Asha::new(params(1, 2, 2, Mode::Max, false), vec![2; 4]).unwrap();
    assert_eq!(
        asha.record(0, 1, f64::NAN).unwrap()[0].action,
        Action::Continue
    );
    assert_eq!(asha.record(1, 1, 0.1).unwrap()[0].action, Action::Continue);
    assert_eq!(asha.record(2, 1, 0.05).unwrap()[0].action, Action::Pause);
    let mut tied = Asha::new(params(1, 2, 2, Mode::Max, true), vec![2; 2]).unwrap();
    tied.record(1, 1, 0.5).unwrap();
    let decisions = tied.record(0, 1, 0.5).unwrap();
    assert_eq!(
        summary(&decisions),
        [(1, 0, Action::Pause, 0.5), (1, 1, Action::Continue, 0.5)]
    );
}

#[test]
fn a_config_that_ends_at_a_rung_is_compared_but_not_decided() {
    let mut asha = Asha::new(params(2, 3, 6, Mode::Max, false), vec![2, 6]).unwrap();
    assert!(asha.record(0, 1, 0.8).unwrap().is_empty());
    assert!(asha.record(0, 2, 0.9).unwrap().is_empty());
    assert_eq!(asha.state(0), Some(ConfigState::Completed));
    assert_eq!(asha.record(1, 1, 0.5).unwrap(), []);
    assert_eq!(
        summary(&asha.record(1, 2, 0.6).unwrap()),
        [(2, 1, Action::Pause, 0.9)]
    );
}

#[test]
fn a_withdrawn_config_leaves_the_comparison() {
    // Asynchronous: the leader fails, so the paused runner-up is now the top.
    let mut asha = Asha::new(params(1, 2, 2, Mode::Max, false), vec![2; 3]).unwrap();
    asha.record(0, 1, 0.9).unwrap();
    assert_eq!(asha.record(1, 1, 0.8).unwrap()[0].action, Action::Pause);
    assert_eq!(
        summary(&asha.withdraw(0).unwrap()),
        [(1, 1, Action::Resume, 0.8)]
    );
    assert_eq!(asha.state(0), Some(ConfigState::Withdrawn));
    assert!(asha.withdraw(0).unwrap().is_empty());
    assert!(matches!(
        asha.record(0, 2, 0.9),
        Err(StopperError::NotRunning { config: 0, .. })
    ));

    // Lockstep: a withdrawal can complete the rung.
    let mut asha = Asha::new(params(1, 3, 2, Mode::Max, true), vec![2; 3]).unwrap();
    asha.record(0, 1, 0.4).unwrap();
    asha.record(1, 1, 0.6).unwrap();
    assert_eq!(
        summary(&asha.withdraw(2).unwrap()),
        [(1, 0, Action::Pause, 0.6), (1, 1, Action::Continue, 0.6)]
    );
}

#[test]
fn out_of_order_and_unknown_reports_are_errors_and_repeats_are_ignored() {
    let mut asha = async_engine();
    asha.record(0, 1, 0.9).unwrap();
    assert!(
        asha.record(0, 1, 0.1).unwrap().is_empty(),
        "the first value stands"
    );
    asha.record(1, 1, 0.8).unwrap();
    assert!(
        asha.record(1, 1, 0.8).unwrap().is_empty(),
        "a repeat of a paused config too"
    );
    assert!(matches!(
        asha.record(1, 2, 0.8),
        Err(StopperError::NotRunning { config: 1, .. })
    ));
    assert_eq!(
        asha.record(2, 2, 0.7),
        Err(StopperError::SkippedRung { config: 2, rung: 1 })
    );
    assert_eq!(
        asha.record(0, 4, 0.9),
        Err(StopperError::SkippedRung { config: 0, rung: 3 })
    );
    assert_eq!(
        asha.record(0, 10, 0.9),
        Err(StopperError::EpochOutOfRange {
            config: 0,
            epoch: 10,
            epochs: 9
        })
    );
    assert!(matches!(
        asha.record(0, 0, 0.9),
        Err(StopperError::EpochOutOfRange { .. })
    ));
    assert_eq!(
        asha.record(6, 1, 0.9),
        Err(StopperError::UnknownConfig {
            config: 6,
            configs: 6
        })
    );
    assert_eq!(
        Asha::new(params(1, 3, 9, Mode::Max, false), vec![]).err(),
        Some(StopperError::NoConfigs)
    );
}

fn stopper_params() -> StoppingParams {
    StoppingParams::Asha(params(1, 3, 9, Mode::Max, false))
}

#[test]
fn replaying_the_stored_observations_repeats_no_decision() {
    let observations = async_script();
    let mut live = Stopper::new(stopper_params(), vec![9; 6]).unwrap();
    let mut stored = Vec::new();
    for observation in &observations {
        stored.extend(live.observe(observation).unwrap());
    }
    assert_eq!(stored.len(), 6 + 1 + 2 + 5);
    let (rebuilt, new) =
        Stopper::replay(stopper_params(), vec![9; 6], &observations, &stored).unwrap();
    assert!(new.is_empty(), "{new:?}");
    for config in 0..6 {
        assert_eq!(rebuilt.state(config), live.state(config));
    }
}

#[test]
fn a_crash_between_an_observation_and_its_decisions_is_made_good_on_replay() {
    let observations = &async_script()[..6];
    let mut live = Stopper::new(stopper_params(), vec![9; 6]).unwrap();
    let mut decisions = Vec::new();
    for observation in observations {
        decisions.extend(live.observe(observation).unwrap());
    }
    // The last observation (config 5 at rung 1) was stored, its two decisions were not.
    let stored = &decisions[..decisions.len() - 2];
    let (mut rebuilt, new) =
        Stopper::replay(stopper_params(), vec![9; 6], observations, stored).unwrap();
    assert_eq!(
        summary(&new),
        [(1, 5, Action::Pause, 0.8), (1, 1, Action::Resume, 0.8)]
    );
    // And the rebuilt engine carries on like the live one.
    assert_eq!(
        summary(&rebuilt.record(0, 3, 0.92).unwrap()),
        summary(&live.record(0, 3, 0.92).unwrap())
    );
}

#[test]
fn stored_decisions_from_another_run_are_refused() {
    let observations = async_script();
    let mut live = Stopper::new(stopper_params(), vec![9; 6]).unwrap();
    let mut stored = Vec::new();
    for observation in &observations {
        stored.extend(live.observe(observation).unwrap());
    }
    stored[2].action = Action::Continue;
    let err = Stopper::replay(stopper_params(), vec![9; 6], &observations, &stored).unwrap_err();
    assert_eq!(err, StopperError::ReplayMismatch { index: 2 });
    // More stored decisions than the observations imply.
    let err = Stopper::replay(
        stopper_params(),
        vec![9; 6],
        &observations[..1],
        &stored[..2],
    )
    .unwrap_err();
    assert_eq!(err, StopperError::ReplayMismatch { index: 1 });
}

#[test]
fn decisions_and_observations_serialize_for_the_store_and_the_api() {
    let decision = Decision {
        rung_epoch: 6,
        config: 2,
        value: 0.81,
        cutoff: 0.84,
        action: Action::Pause,
    };
    assert_eq!(
        serde_json::to_value(decision).unwrap(),
        serde_json::json!({"rung_epoch": 6, "config": 2, "value": 0.81, "cutoff": 0.84, "action": "pause"})
    );
    let observation = Observation::Value {
        config: 1,
        epoch: 3,
        value: 0.5,
    };
    let json = serde_json::to_string(&observation).unwrap();
    assert_eq!(
        json,
        r#"{"event":"value","config":1,"epoch":3,"value":0.5}"#
    );
    assert_eq!(
        serde_json::from_str::<Observation>(&json).unwrap(),
        observation
    );
    assert_eq!(
        serde_json::to_string(&Observation::Finished).unwrap(),
        r#"{"event":"finished"}"#
    );
}

#[test]
fn finishing_mid_rung_stops_the_configs_waiting_there() {
    let mut asha = Asha::new(params(1, 2, 4, Mode::Max, true), vec![4; 3]).unwrap();
    asha.record(0, 1, 0.5).unwrap();
    asha.record(1, 1, 0.7).unwrap();
    // Config 2 never reports (the sweep was canceled): the rung is never complete.
    let stops = asha.finish();
    assert_eq!(
        stops
            .iter()
            .map(|d| (d.config, d.action, d.value))
            .collect::<Vec<_>>(),
        [(0, Action::Stop, 0.5), (1, Action::Stop, 0.7)]
    );
    assert_eq!(
        asha.state(2),
        Some(ConfigState::Running),
        "not at a rung: the service ends it"
    );
}
