//! Fair share between tenants, on both backends: the claim takes turns between tenants
//! (fewest running first, then the one served least recently), so one tenant's long queue
//! does not starve another's few jobs; a tenant at its running limit is passed over, by
//! single claims and lockstep claims alike.

use std::collections::HashMap;

use lrlab::job::{JobId, JobStatus};
use lrlab::store::{ClaimLimits, NewMember, NewSweep, Store, SweepSubmitted};

use super::{open, spec, submit_as, worker, TTL};

on_both_backends!(
    one_worker_alternates_between_two_tenants_while_both_have_work,
    claims_go_to_the_tenant_with_the_fewest_running_jobs,
    priority_orders_jobs_within_a_tenant_not_across_tenants,
    a_tenant_at_its_running_limit_is_passed_over,
    lockstep_claims_stop_at_the_tenant_running_limit,
);

async fn submit_for(store: &Store, tenant: &str, name: &str, priority: i64) -> JobId {
    submit_as(store, Some(tenant), name, priority).await.id
}

/// Tenant `a` queues 10 jobs, then tenant `b` queues 2.
async fn ten_then_two(store: &Store) -> HashMap<JobId, &'static str> {
    let mut tenant_of = HashMap::new();
    for i in 0..10 {
        tenant_of.insert(submit_for(store, "a", &format!("a-{i}"), 0).await, "a");
    }
    for i in 0..2 {
        tenant_of.insert(submit_for(store, "b", &format!("b-{i}"), 0).await, "b");
    }
    tenant_of
}

async fn one_worker_alternates_between_two_tenants_while_both_have_work(store: Store) {
    let tenant_of = ten_then_two(&store).await;
    // One worker: each job ends before the next claim, so no tenant ever has a running
    // job when the claim chooses; the turn goes to the tenant served least recently.
    let mut order = Vec::new();
    let mut ids = Vec::new();
    while let Some(claim) = store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
    {
        order.push(tenant_of[&claim.job.id]);
        ids.push(claim.job.id);
        store
            .finish(&claim.lease, JobStatus::Succeeded, None)
            .await
            .unwrap();
    }
    assert_eq!(
        order,
        ["a", "b", "a", "b", "a", "a", "a", "a", "a", "a", "a", "a"],
        "b's two jobs do not wait for a's ten"
    );
    // Within a tenant, the oldest first.
    let a_ids: Vec<JobId> = ids
        .iter()
        .copied()
        .filter(|id| tenant_of[id] == "a")
        .collect();
    let mut sorted = a_ids.clone();
    sorted.sort();
    assert_eq!(a_ids, sorted);
}

async fn claims_go_to_the_tenant_with_the_fewest_running_jobs(store: Store) {
    let tenant_of = ten_then_two(&store).await;
    // Several workers: the claims stay running, and each goes to the tenant running fewer.
    let mut order = Vec::new();
    for n in 0..6 {
        let claim = store
            .claim_next(&worker(&format!("w{n}")), TTL, ClaimLimits::NONE)
            .await
            .unwrap()
            .expect("a queued job");
        order.push(tenant_of[&claim.job.id]);
    }
    assert_eq!(order, ["a", "b", "a", "b", "a", "a"]);
}

async fn priority_orders_jobs_within_a_tenant_not_across_tenants(store: Store) {
    let low = submit_for(&store, "a", "a-low", 0).await;
    let high = submit_for(&store, "a", "a-high", 5).await;
    let urgent = submit_for(&store, "b", "b-urgent", 9).await;
    let b_low = submit_for(&store, "b", "b-low", 0).await;
    let mut order = Vec::new();
    while let Some(claim) = store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
    {
        order.push(claim.job.id);
        store
            .finish(&claim.lease, JobStatus::Succeeded, None)
            .await
            .unwrap();
    }
    // Both tenants are unserved at first: the tie goes to the tenant's best job by
    // priority (b's urgent job); then a's turn, its highest priority first.
    assert_eq!(order, vec![urgent, high, b_low, low]);
}

async fn a_tenant_at_its_running_limit_is_passed_over(store: Store) {
    let limits = ClaimLimits {
        max_running_per_tenant: Some(2),
    };
    let mut a = Vec::new();
    for i in 0..5 {
        a.push(submit_for(&store, "a", &format!("a-{i}"), 0).await);
    }
    let b = submit_for(&store, "b", "b-0", 0).await;
    let mut claims = Vec::new();
    for n in 0..3 {
        claims.push(
            store
                .claim_next(&worker(&format!("w{n}")), TTL, limits)
                .await
                .unwrap()
                .expect("a job under the limit"),
        );
    }
    let taken: Vec<JobId> = claims.iter().map(|c| c.job.id).collect();
    assert_eq!(taken, vec![a[0], b, a[1]]);
    // a runs 2 (its limit) and b has nothing queued: nothing can be claimed, although
    // three of a's jobs wait.
    assert!(store
        .claim_next(&worker("w3"), TTL, limits)
        .await
        .unwrap()
        .is_none());
    // Without the limit the same queue gives work.
    let unlimited = store
        .claim_next(&worker("w3"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .expect("a's next job");
    assert_eq!(unlimited.job.id, a[2]);
    store
        .finish(&unlimited.lease, JobStatus::Succeeded, None)
        .await
        .unwrap();
    // One of a's jobs ends: a has room for one more.
    store
        .finish(&claims[0].lease, JobStatus::Succeeded, None)
        .await
        .unwrap();
    let next = store
        .claim_next(&worker("w4"), TTL, limits)
        .await
        .unwrap()
        .expect("room for one");
    assert_eq!(next.job.id, a[3]);
    assert!(store
        .claim_next(&worker("w5"), TTL, limits)
        .await
        .unwrap()
        .is_none());
}

async fn lockstep_claims_stop_at_the_tenant_running_limit(store: Store) {
    let limits = ClaimLimits {
        max_running_per_tenant: Some(3),
    };
    let member = spec("m", 0);
    let SweepSubmitted::Created(sweep) = store
        .submit_sweep(NewSweep {
            name: "s",
            request: "{}",
            warnings: &[],
            max_concurrent: None,
            members: (0..5)
                .map(|config| NewMember {
                    spec: &member,
                    warnings: &[],
                    total_steps: 1,
                    config,
                    run_until_epoch: None,
                })
                .collect(),
            idempotency: None,
            tenant: Some("a"),
        })
        .await
        .unwrap()
    else {
        panic!("a new sweep");
    };
    let members = store.sweep_members(sweep.id).await.unwrap();
    let leader = store
        .claim_next(&worker("w"), TTL, limits)
        .await
        .unwrap()
        .expect("the first member");
    let rest: Vec<JobId> = members
        .iter()
        .map(|m| m.id)
        .filter(|id| *id != leader.job.id)
        .collect();
    let companions = store
        .claim_listed(&rest, &worker("w"), TTL, limits)
        .await
        .unwrap();
    let taken: Vec<JobId> = companions.iter().map(|c| c.job.id).collect();
    assert_eq!(
        taken,
        rest[..2].to_vec(),
        "the leader and two companions: 3 running"
    );
    assert!(store
        .claim_listed(&rest[2..], &worker("w"), TTL, limits)
        .await
        .unwrap()
        .is_empty());
}
