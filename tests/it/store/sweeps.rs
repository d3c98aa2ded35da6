//! The sweep half of the store's contract, on both backends: submitting a sweep with its
//! members, listing them and their metrics, coordinator steps refused when the log has
//! grown, `max_concurrent` in the claim, where a paused member goes, and deleting.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::join_all;
use lrlab::job::{JobId, JobSpec, JobStatus};
use lrlab::store::{
    CancelOutcome, ClaimLimits, JobFilter, MemberUpdate, NewMember, NewSweep, Store,
    SweepDeleteOutcome, SweepEvent, SweepFilter, SweepRecord, SweepStatus, SweepStep,
    SweepSubmitted,
};
use lrlab::sweep::{Action, Decision, Observation, SweepId};
use std::time::Duration;

use super::{claim, is_lease_lost, open, report, spec, submit, worker, TTL};

on_both_backends!(
    sweeps_are_submitted_with_all_members_replayed_by_key_and_a_reused_key_is_refused,
    concurrent_sweep_submissions_with_one_key_create_one_sweep,
    members_and_their_metrics_are_listed_by_sweep,
    a_step_is_refused_and_writes_nothing_once_the_log_has_grown,
    of_concurrent_steps_from_one_log_exactly_one_is_applied,
    steps_stop_cancel_and_continue_members_by_their_status,
    claims_run_at_most_max_concurrent_members_of_a_sweep,
    concurrent_claims_never_overshoot_max_concurrent,
    listed_claims_take_the_queued_members_each_with_a_lease_within_max_concurrent,
    a_member_pauses_at_its_rung_or_goes_where_its_sweep_decided_meanwhile,
    an_expired_lease_with_a_pending_early_stop_ends_the_member_stopped_early,
    a_sweep_is_deleted_with_its_members_only_once_finished,
);

/// A canonical request as the service stores it; its grid's keys are not sorted, so a
/// backend that reorders keys would change the plan.
const REQUEST: &str =
    r#"{"base":{"epochs":3},"grid":{"schedule.lr":[0.1,0.2],"batch_size":[32]},"seeds":[0,1]}"#;

/// Two configs × two seeds, pausing at epoch 1 (an ASHA rung), as the service expands it.
fn member_specs() -> Vec<(usize, JobSpec)> {
    (0..4)
        .map(|n| (n / 2, spec(&format!("config-{}-seed-{}", n / 2, n % 2), 0)))
        .collect()
}

async fn submit_sweep_with(
    store: &Store,
    specs: &[(usize, JobSpec)],
    max_concurrent: Option<u32>,
    key: Option<(&str, &str)>,
) -> SweepSubmitted {
    store
        .submit_sweep(NewSweep {
            name: "lr",
            request: REQUEST,
            warnings: &[],
            max_concurrent,
            members: specs
                .iter()
                .map(|(config, spec)| NewMember {
                    spec,
                    warnings: &[],
                    total_steps: 20,
                    config: *config,
                    run_until_epoch: Some(1),
                })
                .collect(),
            idempotency: key,
            tenant: None,
        })
        .await
        .expect("submit the sweep")
}

async fn new_sweep(store: &Store, max_concurrent: Option<u32>) -> (SweepRecord, Vec<JobId>) {
    let specs = member_specs();
    let SweepSubmitted::Created(sweep) =
        submit_sweep_with(store, &specs, max_concurrent, None).await
    else {
        panic!("a new sweep");
    };
    let members = store.sweep_members(sweep.id).await.unwrap();
    (sweep, members.iter().map(|m| m.id).collect())
}

fn value(config: usize, epoch: u32) -> SweepEvent {
    SweepEvent::Observation(Observation::Value {
        config,
        epoch,
        value: 0.1 + 0.7 * config as f64 + 1e-7,
    })
}

fn decision(config: usize, action: Action) -> SweepEvent {
    SweepEvent::Decision(Decision {
        rung_epoch: 1,
        config,
        value: 0.1 + 0.7 * config as f64 + 1e-7,
        cutoff: 0.45,
        action,
    })
}

async fn step(
    store: &Store,
    sweep: SweepId,
    next_seq: u64,
    events: &[SweepEvent],
    updates: &[MemberUpdate],
    status: SweepStatus,
) -> bool {
    store
        .apply_sweep_step(SweepStep {
            sweep,
            next_seq,
            events,
            updates,
            status,
        })
        .await
        .expect("apply the step")
}

async fn status_of(store: &Store, job: JobId) -> JobStatus {
    store.status(job).await.unwrap().expect("the job exists")
}

async fn sweeps_are_submitted_with_all_members_replayed_by_key_and_a_reused_key_is_refused(
    store: Store,
) {
    let specs = member_specs();
    let SweepSubmitted::Created(first) =
        submit_sweep_with(&store, &specs, Some(3), Some(("sweep-key", "hash-a"))).await
    else {
        panic!("the first submission creates the sweep");
    };
    assert_eq!(first.name, "lr");
    assert_eq!(
        first.request, REQUEST,
        "the request reads back byte for byte"
    );
    assert_eq!(first.status, SweepStatus::Queued);
    assert_eq!(first.max_concurrent, Some(3));
    assert!(!first.cancel_requested);
    assert_eq!(first.finished_at, None);

    let members = store.sweep_members(first.id).await.unwrap();
    assert_eq!(members.len(), 4);
    for (member, (config, spec)) in members.iter().zip(&specs) {
        assert_eq!(member.sweep, Some((first.id, *config)), "in plan order");
        assert_eq!(&member.spec, spec);
        assert_eq!(member.status, JobStatus::Queued);
        assert_eq!(member.run_until_epoch, Some(1));
        assert!(!member.stop_early_requested);
    }

    match submit_sweep_with(&store, &specs, Some(3), Some(("sweep-key", "hash-a"))).await {
        SweepSubmitted::Replayed(again) => assert_eq!(again, first),
        other => panic!("a retry replays the first sweep, got {other:?}"),
    }
    match submit_sweep_with(&store, &specs, Some(3), Some(("sweep-key", "hash-b"))).await {
        SweepSubmitted::KeyReused { existing } => assert_eq!(existing, first.id),
        other => panic!("another request under the key is refused, got {other:?}"),
    }
    let (_, jobs) = store.list_jobs(&page(100)).await.unwrap();
    assert_eq!(jobs, 4, "neither the replay nor the refusal added members");
    assert_eq!(store.sweep(first.id).await.unwrap(), Some(first));
    assert_eq!(store.sweep(SweepId::new(999_999)).await.unwrap(), None);
}

async fn concurrent_sweep_submissions_with_one_key_create_one_sweep(store: Store) {
    let specs = member_specs();
    let outcomes = join_all(
        (0..8).map(|_| submit_sweep_with(&store, &specs, None, Some(("raced", "same-body")))),
    )
    .await;
    let mut created = 0;
    let mut ids = HashSet::new();
    for outcome in outcomes {
        match outcome {
            SweepSubmitted::Created(sweep) => {
                created += 1;
                ids.insert(sweep.id);
            }
            SweepSubmitted::Replayed(sweep) => {
                ids.insert(sweep.id);
            }
            SweepSubmitted::KeyReused { .. } => panic!("the same body is never a reused key"),
        }
    }
    assert_eq!((created, ids.len()), (1, 1));
    let (_, jobs) = store.list_jobs(&page(100)).await.unwrap();
    assert_eq!(jobs, 4, "one sweep's members, once");
}

fn page(limit: u32) -> JobFilter {
    JobFilter {
        limit,
        ..JobFilter::default()
    }
}

async fn members_and_their_metrics_are_listed_by_sweep(store: Store) {
    let (older, _) = new_sweep(&store, None).await;
    let (sweep, members) = new_sweep(&store, None).await;
    let outsider = submit(&store, "not-a-member", 10).await.id;

    // Each claim takes the highest priority first: the outsider, then members by age.
    let outside = claim(&store, TTL).await;
    assert_eq!(outside.job.id, outsider);
    store
        .record_epoch(&outside.lease, &report(1, 2, 0.3))
        .await
        .unwrap();
    let mut leases = Vec::new();
    for _ in 0..8 {
        leases.push(claim(&store, TTL).await);
    }
    for held in leases.iter().filter(|c| members.contains(&c.job.id)) {
        store
            .record_epoch(&held.lease, &report(1, 2, 0.5))
            .await
            .unwrap();
        store
            .record_epoch(&held.lease, &report(2, 2, 0.6))
            .await
            .unwrap();
    }

    let metrics = store.sweep_metrics(sweep.id).await.unwrap();
    assert_eq!(
        metrics.keys().copied().collect::<HashSet<_>>(),
        members.iter().copied().collect::<HashSet<_>>(),
        "members only"
    );
    for rows in metrics.values() {
        let epochs: Vec<u32> = rows.iter().map(|m| m.epoch).collect();
        assert_eq!(epochs, vec![1, 2], "in epoch order");
        assert_eq!(rows[1].test_acc, 0.6);
    }
    assert!(store.sweep_metrics(older.id).await.unwrap().is_empty());

    let filter = JobFilter {
        sweep: Some(sweep.id),
        ..page(2)
    };
    let (listed, total) = store.list_jobs(&filter).await.unwrap();
    assert_eq!(total, 4);
    assert_eq!(
        listed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![members[3], members[2]],
        "a page of the sweep's members, newest first"
    );

    let (sweeps, total) = store
        .list_sweeps(&SweepFilter {
            before: None,
            limit: 1,
            tenant: None,
        })
        .await
        .unwrap();
    assert_eq!((sweeps.len(), total), (1, 2));
    assert_eq!(sweeps[0].id, sweep.id, "newest first");
    let (before, _) = store
        .list_sweeps(&SweepFilter {
            before: Some(sweep.id),
            limit: 10,
            tenant: None,
        })
        .await
        .unwrap();
    assert_eq!(before.iter().map(|s| s.id).collect::<Vec<_>>(), [older.id]);
    assert_eq!(
        store.unfinished_sweeps().await.unwrap(),
        vec![older.id, sweep.id]
    );
}

async fn a_step_is_refused_and_writes_nothing_once_the_log_has_grown(store: Store) {
    let (sweep, members) = new_sweep(&store, None).await;
    let first = [value(0, 1), value(1, 1), decision(1, Action::Stop)];
    assert!(
        step(
            &store,
            sweep.id,
            0,
            &first,
            &[MemberUpdate::StopEarly { job: members[2] }],
            SweepStatus::Running
        )
        .await
    );
    let log = store.sweep_events(sweep.id).await.unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(
        log.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        first.to_vec(),
        "every value reads back exactly"
    );
    assert_eq!(status_of(&store, members[2]).await, JobStatus::StoppedEarly);
    let after_first = store.sweep(sweep.id).await.unwrap().unwrap();
    assert_eq!(after_first.status, SweepStatus::Running);

    // A coordinator that read the log before the first step wrote.
    let stale = step(
        &store,
        sweep.id,
        0,
        &[value(0, 1)],
        &[MemberUpdate::Cancel { job: members[0] }],
        SweepStatus::Succeeded,
    )
    .await;
    assert!(!stale, "refused");
    assert_eq!(store.sweep_events(sweep.id).await.unwrap(), log);
    assert_eq!(status_of(&store, members[0]).await, JobStatus::Queued);
    assert_eq!(
        store.sweep(sweep.id).await.unwrap().unwrap(),
        after_first,
        "nor its status"
    );
    // One that read all of it goes on.
    assert!(
        step(
            &store,
            sweep.id,
            3,
            &[decision(0, Action::Continue)],
            &[],
            SweepStatus::Running
        )
        .await
    );
    assert_eq!(store.sweep_events(sweep.id).await.unwrap().len(), 4);
    assert!(
        !step(&store, sweep.id, 3, &[], &[], SweepStatus::Running).await,
        "a step without entries is refused too"
    );
}

async fn of_concurrent_steps_from_one_log_exactly_one_is_applied(store: Store) {
    let (sweep, _) = new_sweep(&store, None).await;
    let events: Vec<[SweepEvent; 2]> = (0..8u32)
        .map(|n| [value(0, n + 1), value(1, n + 1)])
        .collect();
    let applied = join_all(
        events
            .iter()
            .map(|events| step(&store, sweep.id, 0, events, &[], SweepStatus::Running)),
    )
    .await;
    assert_eq!(applied.iter().filter(|&&ok| ok).count(), 1, "{applied:?}");
    let winner = applied.iter().position(|&ok| ok).unwrap();
    let log = store.sweep_events(sweep.id).await.unwrap();
    assert_eq!(
        log.into_iter().map(|e| e.event).collect::<Vec<_>>(),
        events[winner].to_vec(),
        "the winner's entries alone"
    );
}

async fn steps_stop_cancel_and_continue_members_by_their_status(store: Store) {
    let (sweep, members) = new_sweep(&store, None).await;
    let running = claim(&store, TTL).await;
    assert_eq!(running.job.id, members[0]);
    let paused = claim(&store, TTL).await;
    assert_eq!(
        store.pause(&paused.lease, 1).await.unwrap(),
        JobStatus::Paused
    );
    let updates = [
        MemberUpdate::StopEarly { job: members[0] },
        MemberUpdate::Continue {
            job: members[1],
            run_until: Some(2),
        },
        MemberUpdate::StopEarly { job: members[2] },
        MemberUpdate::Cancel { job: members[3] },
    ];
    assert!(step(&store, sweep.id, 0, &[], &updates, SweepStatus::Running).await);

    // Running: flagged, and told through its heartbeat; it stops at its next batch.
    let record = store.job(members[0]).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Running);
    assert!(record.stop_early_requested);
    let renewal = store.heartbeat(&running.lease, TTL).await.unwrap();
    assert!(renewal.stop_early_requested && !renewal.cancel_requested);
    // Paused, let past its rung: queued again with its next pause point.
    let record = store.job(members[1]).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Queued);
    assert_eq!(record.run_until_epoch, Some(2));
    // Queued: ended at once.
    let record = store.job(members[2]).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::StoppedEarly);
    assert!(record.finished_at.is_some());
    let record = store.job(members[3]).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Canceled);
    assert!(record.finished_at.is_some());

    // Updates touch only the sweep's own members.
    let outsider = submit(&store, "outsider", 0).await.id;
    let (other, _) = new_sweep(&store, None).await;
    assert!(
        step(
            &store,
            other.id,
            0,
            &[],
            &[MemberUpdate::Cancel { job: outsider }],
            SweepStatus::Queued
        )
        .await
    );
    assert_eq!(status_of(&store, outsider).await, JobStatus::Queued);
}

async fn claims_run_at_most_max_concurrent_members_of_a_sweep(store: Store) {
    let (_, members) = new_sweep(&store, Some(2)).await;
    let outsider = submit(&store, "outsider", -5).await.id;
    let first = claim(&store, TTL).await;
    let second = claim(&store, TTL).await;
    assert_eq!([first.job.id, second.job.id], [members[0], members[1]]);
    // The sweep is at its limit: the next claim passes over its members.
    let third = claim(&store, TTL).await;
    assert_eq!(third.job.id, outsider);
    assert!(store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .is_none());

    // A member that pauses frees its slot.
    assert_eq!(
        store.pause(&first.lease, 1).await.unwrap(),
        JobStatus::Paused
    );
    let next = claim(&store, TTL).await;
    assert_eq!(next.job.id, members[2]);
    assert!(store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .is_none());
    // So does one that ends.
    store
        .finish(&second.lease, JobStatus::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(claim(&store, TTL).await.job.id, members[3]);

    // Without a limit every member can run at once.
    let (_, unlimited) = new_sweep(&store, None).await;
    let mut taken = Vec::new();
    while let Some(claim) = store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
    {
        taken.push(claim.job.id);
    }
    assert_eq!(taken, unlimited);
}

async fn concurrent_claims_never_overshoot_max_concurrent(store: Store) {
    let specs: Vec<(usize, JobSpec)> = (0..12)
        .map(|n| (n, spec(&format!("member-{n}"), 0)))
        .collect();
    // A race: each round is one more chance for claims to slip past the limit together.
    for round in 0..4 {
        let SweepSubmitted::Created(sweep) = submit_sweep_with(&store, &specs, Some(3), None).await
        else {
            panic!("a new sweep");
        };
        let claimers = (0..8).map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .claim_next(&worker(&format!("c-{n}")), TTL, ClaimLimits::NONE)
                    .await
            })
        });
        let mut claimed = 0;
        for outcome in join_all(claimers).await {
            if outcome.expect("a claimer").expect("claim").is_some() {
                claimed += 1;
            }
        }
        assert!(
            claimed <= 3,
            "round {round}: {claimed} members claimed at once"
        );
        // Claims one after another fill the free slots, and no more.
        while store
            .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
            .await
            .unwrap()
            .is_some()
        {}
        let running = JobFilter {
            statuses: vec![JobStatus::Running],
            sweep: Some(sweep.id),
            ..page(100)
        };
        let (_, total) = store.list_jobs(&running).await.unwrap();
        assert_eq!(total, 3, "round {round}");
    }
}

async fn listed_claims_take_the_queued_members_each_with_a_lease_within_max_concurrent(
    store: Store,
) {
    // A lockstep leader and its companions: four members, at most three running.
    let (_, members) = new_sweep(&store, Some(3)).await;
    let leader = claim(&store, TTL).await;
    assert_eq!(leader.job.id, members[0]);
    assert_eq!(
        store.cancel(members[1]).await.unwrap(),
        CancelOutcome::Canceled
    );
    let listed = [members[0], members[1], members[2], members[3]];
    let companions = store
        .claim_listed(&listed, &worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap();
    // The leader is running already, the canceled member is out, and the limit leaves room
    // for two of the rest.
    let ids: Vec<JobId> = companions.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, [members[2], members[3]]);
    let mut tokens = HashSet::new();
    tokens.insert(leader.lease.token.as_str().to_string());
    for companion in &companions {
        assert_eq!(companion.job.status, JobStatus::Running);
        assert_eq!(companion.job.attempts, 1);
        assert_eq!(companion.job.worker.as_deref(), Some("w"));
        assert_eq!(companion.lease.job, companion.job.id);
        assert!(tokens.insert(companion.lease.token.as_str().to_string()));
        // Each lease fences its own job's writes.
        store.heartbeat(&companion.lease, TTL).await.unwrap();
    }
    let crossed = lrlab::store::Lease {
        job: members[2],
        ..companions[1].lease.clone()
    };
    assert!(is_lease_lost(store.heartbeat(&crossed, TTL).await));
    // Nothing is left to take.
    assert!(store
        .claim_listed(&listed, &worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .is_empty());

    // The limit counts the members claimed in the same call.
    let (_, limited) = new_sweep(&store, Some(2)).await;
    let taken = store
        .claim_listed(&limited, &worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap();
    let ids: Vec<JobId> = taken.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, [limited[0], limited[1]]);
}

async fn a_member_pauses_at_its_rung_or_goes_where_its_sweep_decided_meanwhile(store: Store) {
    let (sweep, members) = new_sweep(&store, None).await;
    let leases: Vec<_> = {
        let mut leases = Vec::new();
        for _ in 0..4 {
            leases.push(claim(&store, TTL).await.lease);
        }
        leases
    };
    assert_eq!(
        leases.iter().map(|l| l.job).collect::<Vec<_>>(),
        members,
        "claimed in order"
    );
    // Meanwhile: member 1 is let past its rung, member 2 stopped, member 3 canceled.
    assert!(
        step(
            &store,
            sweep.id,
            0,
            &[],
            &[
                MemberUpdate::Continue {
                    job: members[1],
                    run_until: Some(2)
                },
                MemberUpdate::StopEarly { job: members[2] },
            ],
            SweepStatus::Running
        )
        .await
    );
    assert_eq!(
        store.cancel(members[3]).await.unwrap(),
        CancelOutcome::Requested
    );

    let expected = [
        JobStatus::Paused,
        JobStatus::Queued,
        JobStatus::StoppedEarly,
        JobStatus::Canceled,
    ];
    for (lease, expected) in leases.iter().zip(expected) {
        assert_eq!(store.pause(lease, 1).await.unwrap(), expected);
        let record = store.job(lease.job).await.unwrap().unwrap();
        assert_eq!(record.status, expected);
        assert_eq!(record.worker, None);
        assert_eq!(
            record.finished_at.is_some(),
            expected.is_finished(),
            "{expected}"
        );
        // The lease ended with the pause.
        assert!(is_lease_lost(store.heartbeat(lease, TTL).await));
        assert!(is_lease_lost(store.pause(lease, 1).await));
        assert!(is_lease_lost(
            store.finish(lease, JobStatus::Succeeded, None).await
        ));
    }
    assert!(store.held_leases().await.unwrap().is_empty());
    assert!(store.requeue_expired().await.unwrap().is_empty());
    // A paused member is off the workers; the one let past its rung is claimed again.
    let again = claim(&store, TTL).await;
    assert_eq!((again.job.id, again.job.attempts), (members[1], 2));
    // Its first worker's lease pauses nothing now.
    assert!(is_lease_lost(store.pause(&leases[1], 2).await));
    assert_eq!(status_of(&store, members[1]).await, JobStatus::Running);
    assert_eq!(
        store.pause(&again.lease, 2).await.unwrap(),
        JobStatus::Paused,
        "at its next rung"
    );
    assert!(store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .is_none());
    // A paused member can be canceled at once.
    assert_eq!(
        store.cancel(members[0]).await.unwrap(),
        CancelOutcome::Canceled
    );
}

async fn an_expired_lease_with_a_pending_early_stop_ends_the_member_stopped_early(store: Store) {
    let (sweep, members) = new_sweep(&store, None).await;
    let lapsed = claim(&store, Duration::ZERO).await;
    assert!(
        step(
            &store,
            sweep.id,
            0,
            &[],
            &[MemberUpdate::StopEarly { job: members[0] }],
            SweepStatus::Running
        )
        .await
    );
    let expired = store.requeue_expired().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].job, expired[0].status, expired[0].sweep),
        (lapsed.job.id, JobStatus::StoppedEarly, Some(sweep.id))
    );
    let record = store.job(members[0]).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::StoppedEarly);
    assert!(record.finished_at.is_some());
}

async fn a_sweep_is_deleted_with_its_members_only_once_finished(store: Store) {
    let (sweep, members) = new_sweep(&store, None).await;
    let (kept, kept_members) = new_sweep(&store, None).await;
    let held = claim(&store, TTL).await;
    store
        .record_epoch(&held.lease, &report(1, 2, 0.5))
        .await
        .unwrap();
    store
        .finish(&held.lease, JobStatus::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(
        store.delete_sweep(sweep.id).await.unwrap(),
        SweepDeleteOutcome::NotFinished(SweepStatus::Queued)
    );
    assert_eq!(
        store.request_sweep_cancel(sweep.id).await.unwrap(),
        Some(SweepStatus::Queued)
    );
    assert!(
        store
            .sweep(sweep.id)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
    );
    assert_eq!(
        store
            .request_sweep_cancel(SweepId::new(999_999))
            .await
            .unwrap(),
        None
    );
    let cancels: Vec<MemberUpdate> = members[1..]
        .iter()
        .map(|&job| MemberUpdate::Cancel { job })
        .collect();
    assert!(
        step(
            &store,
            sweep.id,
            0,
            &[value(0, 1)],
            &cancels,
            SweepStatus::Canceled
        )
        .await
    );
    let finished = store.sweep(sweep.id).await.unwrap().unwrap();
    assert_eq!(finished.status, SweepStatus::Canceled);
    assert!(finished.finished_at.is_some());
    assert_eq!(store.unfinished_sweeps().await.unwrap(), vec![kept.id]);

    assert_eq!(
        store.delete_sweep(sweep.id).await.unwrap(),
        SweepDeleteOutcome::Deleted
    );
    assert_eq!(store.sweep(sweep.id).await.unwrap(), None);
    for &member in &members {
        assert_eq!(store.job(member).await.unwrap(), None);
    }
    assert!(store.epoch_metrics(members[0]).await.unwrap().is_empty());
    assert!(store.sweep_events(sweep.id).await.unwrap().is_empty());
    assert_eq!(
        store.delete_sweep(sweep.id).await.unwrap(),
        SweepDeleteOutcome::NotFound
    );
    assert_eq!(
        store.sweep_members(kept.id).await.unwrap().len(),
        kept_members.len(),
        "another sweep keeps its members"
    );
}
