//! What a job has produced: per-update records page by page, and weights once they exist.

use serde_json::{json, Value};

use crate::support::{error_of, small_job, spawn_app, TRAIN_IMAGES};

/// Follows `next_from` from `from=0` with pages of `limit`; returns every step index seen
/// and the sizes of the pages.
async fn read_all_steps(
    app: &crate::support::TestApp,
    id: i64,
    limit: u64,
) -> (Vec<u64>, Vec<usize>) {
    let (mut steps, mut pages) = (Vec::new(), Vec::new());
    let mut from = 0;
    loop {
        let page: Value = app
            .get(&format!("/v1/jobs/{id}/steps?from={from}&limit={limit}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["job"], id);
        let records = page["steps"].as_array().unwrap();
        pages.push(records.len());
        steps.extend(records.iter().map(|s| s["step"].as_u64().unwrap()));
        match page["next_from"].as_u64() {
            Some(next) => {
                assert_eq!(Some(next), steps.last().map(|s| s + 1), "{page}");
                from = next;
            }
            None => return (steps, pages),
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

#[tokio::test]
async fn steps_come_in_pages_linked_by_next_from() {
    let app = spawn_app(1).await;
    let id = app.submit(&small_job(2)).await;
    assert_eq!(app.wait_finished(id).await["status"], "succeeded");
    let total = 2 * TRAIN_IMAGES.div_ceil(64) as u64;
    assert_eq!(total, 16);
    let every: Vec<u64> = (0..total).collect();

    // 16 = 5 + 5 + 5 + 1: the short last page has no `next_from`.
    let (steps, pages) = read_all_steps(&app, id, 5).await;
    assert_eq!(steps, every);
    assert_eq!(pages, [5, 5, 5, 1]);
    // 16 = 8 + 8: a full last page cannot know it is the last; the page after it is empty.
    let (steps, pages) = read_all_steps(&app, id, 8).await;
    assert_eq!(steps, every);
    assert_eq!(pages, [8, 8, 0]);

    // A page from the middle, and the defaults (from 0, 1000 a page).
    let page: Value = app
        .get(&format!("/v1/jobs/{id}/steps?from=13"))
        .await
        .json()
        .await
        .unwrap();
    let from_13: Vec<u64> = page["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_u64().unwrap())
        .collect();
    assert_eq!(from_13, [13, 14, 15]);
    assert!(page.get("next_from").is_none(), "{page}");
    let page: Value = app
        .get(&format!("/v1/jobs/{id}/steps"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["steps"].as_array().unwrap().len(), 16);

    // Beyond the last step: an empty page, not an error, and nothing to follow.
    for from in [16, 17, u64::MAX] {
        let response = app
            .get(&format!("/v1/jobs/{id}/steps?from={from}&limit=1"))
            .await;
        assert_eq!(response.status(), 200, "from={from}");
        let page: Value = response.json().await.unwrap();
        assert_eq!(page["steps"], Value::Array(vec![]), "from={from}: {page}");
        assert!(page.get("next_from").is_none(), "from={from}: {page}");
    }
    let page: Value = app
        .get(&format!("/v1/jobs/{id}/steps?limit=100000"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["steps"].as_array().unwrap().len(), 16);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_step_page_parameters_are_400s_naming_the_parameter() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    for (query, parameter) in [
        ("from=-1", "from"),
        ("from=abc", "from"),
        ("from=1.5", "from"),
        ("limit=0", "limit"),
        ("limit=100001", "limit"),
        ("limit=-3", "limit"),
        ("limit=ten", "limit"),
        ("form=3", "form"),
    ] {
        let (status, error) =
            error_of(app.get(&format!("/v1/jobs/{id}/steps?{query}")).await).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(error["code"], "invalid_query", "{query}: {error}");
        assert_eq!(error["path"], parameter, "{query}: {error}");
    }
    // Any integer ≥ 0 is a position, however large (openapi.yaml says so): past the last
    // update it is an empty last page.
    let page: Value = app
        .get(&format!("/v1/jobs/{id}/steps?from=18446744073709551616"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["steps"], json!([]));
    assert!(page.get("next_from").is_none(), "{page}");
    app.shutdown().await;
}

#[tokio::test]
async fn weights_before_the_first_epoch_are_a_404_that_says_when_they_come() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    let (status, error) = error_of(app.get(&format!("/v1/jobs/{id}/weights")).await).await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["code"], "not_found");
    assert!(
        error["message"].as_str().unwrap().contains("first epoch"),
        "{error}"
    );
    app.shutdown().await;
}
