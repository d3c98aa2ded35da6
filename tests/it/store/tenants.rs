//! The tenant and token half of the store's contract, on both backends: jobs and sweeps
//! keep their tenant (members inherit the sweep's), listings filter by it, and tokens are
//! stored by hash, found by hash, listed and revoked.

use chrono::{Duration, Utc};
use lrlab::auth::{hash_token, Role};
use lrlab::store::{
    JobFilter, NewJob, NewMember, NewSweep, NewToken, Store, SweepFilter, SweepSubmitted,
};

use super::{open, spec};

on_both_backends!(
    jobs_and_sweeps_keep_their_tenant_and_listings_filter_by_it,
    tokens_are_found_by_hash_listed_and_revoked_once,
);

async fn jobs_and_sweeps_keep_their_tenant_and_listings_filter_by_it(store: Store) {
    let a = spec("a", 0);
    let job = |tenant| NewJob {
        spec: &a,
        warnings: &[],
        total_steps: 1,
        idempotency: None,
        tenant,
    };
    let old = store.submit(job(None)).await.unwrap();
    let mine = store.submit(job(Some("lab-a"))).await.unwrap();
    let (lrlab::store::Submitted::Created(old), lrlab::store::Submitted::Created(mine)) =
        (old, mine)
    else {
        panic!("both jobs are new");
    };
    assert_eq!(
        store.job_tenant(old.id).await.unwrap().as_deref(),
        Some("default")
    );
    assert_eq!(
        store.job_tenant(mine.id).await.unwrap().as_deref(),
        Some("lab-a")
    );
    assert_eq!(
        store.job_tenant(lrlab::job::JobId::new(999)).await.unwrap(),
        None
    );

    let member = spec("m", 0);
    let SweepSubmitted::Created(sweep) = store
        .submit_sweep(NewSweep {
            name: "s",
            request: "{}",
            warnings: &[],
            max_concurrent: None,
            members: vec![NewMember {
                spec: &member,
                warnings: &[],
                total_steps: 1,
                config: 0,
                run_until_epoch: None,
            }],
            idempotency: None,
            tenant: Some("lab-a"),
        })
        .await
        .unwrap()
    else {
        panic!("a new sweep");
    };
    assert_eq!(
        store.sweep_tenant(sweep.id).await.unwrap().as_deref(),
        Some("lab-a")
    );

    let of = |tenant: Option<&str>| JobFilter {
        limit: 10,
        tenant: tenant.map(str::to_string),
        ..JobFilter::default()
    };
    let (jobs, total) = store.list_jobs(&of(Some("lab-a"))).await.unwrap();
    assert_eq!(total, 2, "its job and its sweep's member");
    assert!(jobs.iter().all(|j| j.id != old.id));
    let (_, total) = store.list_jobs(&of(Some("default"))).await.unwrap();
    assert_eq!(total, 1);
    let (_, total) = store.list_jobs(&of(None)).await.unwrap();
    assert_eq!(total, 3);
    let sweeps_of = |tenant: &str| SweepFilter {
        limit: 10,
        tenant: Some(tenant.to_string()),
        ..SweepFilter::default()
    };
    let (sweeps, total) = store.list_sweeps(&sweeps_of("lab-a")).await.unwrap();
    assert_eq!((sweeps.len(), total), (1, 1));
    let (sweeps, total) = store.list_sweeps(&sweeps_of("lab-b")).await.unwrap();
    assert_eq!((sweeps.len(), total), (0, 0));
}

async fn tokens_are_found_by_hash_listed_and_revoked_once(store: Store) {
    let hash = hash_token("lrlab_secret-one-that-is-long-enough-000000");
    let expires = Utc::now() + Duration::days(1);
    let created = store
        .create_token(NewToken {
            tenant: "lab-a",
            role: Role::Member,
            hash: &hash,
            expires_at: Some(expires),
        })
        .await
        .unwrap();
    assert_eq!(
        (created.tenant.as_str(), created.role),
        ("lab-a", Role::Member)
    );
    assert!(created.is_live(Utc::now()));
    assert!(
        !created.is_live(expires + Duration::seconds(1)),
        "expired after its date"
    );

    let found = store
        .token_by_hash(&hash)
        .await
        .unwrap()
        .expect("found by hash");
    assert_eq!(found.id, created.id);
    assert_eq!(
        store.token_by_hash(&hash_token("other")).await.unwrap(),
        None
    );
    let duplicate = store
        .create_token(NewToken {
            tenant: "lab-b",
            role: Role::Admin,
            hash: &hash,
            expires_at: None,
        })
        .await;
    assert!(duplicate.is_err(), "one hash, one token");

    assert_eq!(store.tokens().await.unwrap().len(), 1);
    assert_eq!(store.revoke_token(created.id).await.unwrap(), Some(true));
    assert_eq!(
        store.revoke_token(created.id).await.unwrap(),
        Some(false),
        "already revoked"
    );
    assert_eq!(store.revoke_token(created.id + 100).await.unwrap(), None);
    let revoked = store
        .token_by_hash(&hash)
        .await
        .unwrap()
        .expect("still stored");
    assert!(revoked.revoked_at.is_some() && !revoked.is_live(Utc::now()));
}
