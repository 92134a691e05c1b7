//! The Okta client against the stateful fake Okta: a private-key JWT token fetched once and
//! reused (DPoP when Okta asks for it), SSWS, scopes, the exact-name group search (not the
//! prefix match of `q=`), duplicates refused, rate limits waited out, GETs retried after a
//! 500 and creates never sent twice, pagination that never leaves the org, group rules
//! through their lifecycle, app assignments, SAML metadata, and no write once the hold is
//! lost.

mod common;

use common::fake_okta::{
    CLIENT_ID, ClientKey, FakeOkta, OktaState, SCOPE_GROUPS_READ, SSWS_TOKEN, test_es256_key,
    test_rs256_key,
};
use orgvend::config::Secret;
use orgvend::okta::{OktaAuth, OktaClient, OktaError, is_already_exists, is_ambiguous, okta_error};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

fn ssws(fake: &FakeOkta) -> OktaClient {
    OktaClient::new(
        &fake.url(),
        OktaAuth::Ssws {
            token: Secret::new(SSWS_TOKEN),
        },
        TIMEOUT,
    )
    .unwrap()
    .with_retry_base(Duration::from_millis(5))
}

fn jwt_client(fake: &FakeOkta, pem: &str, scopes: &[&str]) -> OktaClient {
    OktaClient::new(
        &fake.url(),
        OktaAuth::PrivateKeyJwt {
            client_id: CLIENT_ID.to_string(),
            key_pem: Secret::new(pem),
            key_id: Some("orgvend-key-1".to_string()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        },
        TIMEOUT,
    )
    .unwrap()
    .with_retry_base(Duration::from_millis(5))
}

/// A fake whose service app holds a fresh ES256 key; the key's PEM.
async fn fake_with_key() -> (FakeOkta, String) {
    let (pem, public) = test_es256_key();
    let mut state = OktaState::new();
    state.client_key = Some(ClientKey::Es256(public));
    (FakeOkta::start(state).await, pem)
}

fn count(fake: &FakeOkta, method: &str, path_starts: &str) -> usize {
    fake.calls()
        .iter()
        .filter(|(m, p)| m == method && p.starts_with(path_starts))
        .count()
}

fn status_of(e: &anyhow::Error) -> Option<u16> {
    okta_error(e).and_then(|o| o.status)
}

fn code_of(e: &anyhow::Error) -> Option<String> {
    okta_error(e).and_then(|o| o.code.clone())
}

/// A plain GET with the SSWS token, past the client (to show what `q=` would return).
async fn raw_get(fake: &FakeOkta, path_and_query: &str) -> serde_json::Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::new()
        .get(format!("{}{path_and_query}", fake.url()))
        .header("authorization", format!("SSWS {SSWS_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_private_key_jwt_token_is_fetched_once_and_reused() {
    let (fake, pem) = fake_with_key().await;
    fake.with(|s| s.add_group("aws#acme#Admin#1"));
    let okta = jwt_client(&fake, &pem, &[]);
    assert_eq!(okta.calls(), 0, "building the client makes no request");
    assert!(
        okta.group_by_name("aws#acme#Admin#1")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        okta.group_by_name("aws#acme#Admin#2")
            .await
            .unwrap()
            .is_none()
    );
    let made = okta
        .create_group("aws#acme#Admin#2", "made by orgvend")
        .await
        .unwrap();
    assert_eq!(
        fake.with(|s| s.group_named("aws#acme#Admin#2")),
        Some(made.id)
    );
    assert_eq!(
        fake.with(|s| s.tokens_issued),
        1,
        "one token for three calls"
    );
    assert_eq!(count(&fake, "POST", "/oauth2/v1/token"), 1);
    assert_eq!(okta.calls(), 4, "the token request and three API calls");
    let token = fake.with(|s| s.tokens.values().next().cloned()).unwrap();
    assert!(
        token.dpop_jwk.is_none(),
        "a Bearer token: DPoP was not asked for"
    );
    assert_eq!(token.scopes, ["okta.groups.manage", "okta.apps.manage"]);
}

#[tokio::test]
async fn an_rs256_key_works_and_a_key_okta_does_not_know_is_refused() {
    let (pem, public) = test_rs256_key();
    let mut state = OktaState::new();
    state.client_key = Some(ClientKey::Rs256(public));
    let fake = FakeOkta::start(state).await;
    let okta = jwt_client(&fake, &pem, &[]);
    assert!(okta.group_by_name("x").await.unwrap().is_none());

    let (other_pem, _) = test_es256_key();
    let stranger = jwt_client(&fake, &other_pem, &[]);
    let e = stranger.group_by_name("x").await.unwrap_err();
    assert_eq!(status_of(&e), Some(401), "{e:#}");
    assert_eq!(code_of(&e).as_deref(), Some("invalid_client"));
    assert_eq!(fake.with(|s| s.tokens_issued), 1);
    assert!(!format!("{e:#}").contains("PRIVATE KEY"));
}

#[tokio::test]
async fn scopes_are_asked_for_and_enforced() {
    let (fake, pem) = fake_with_key().await;
    fake.with(|s| s.granted_scopes = vec![SCOPE_GROUPS_READ.to_string()]);
    // the default scopes include okta.apps.manage, which this app was not granted
    let e = jwt_client(&fake, &pem, &[])
        .group_by_name("x")
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("invalid_scope"), "{e:#}");
    // read only: a search works, a create is forbidden
    let reader = jwt_client(&fake, &pem, &[SCOPE_GROUPS_READ]);
    assert!(reader.group_by_name("x").await.unwrap().is_none());
    let e = reader.create_group("x", "").await.unwrap_err();
    assert_eq!(status_of(&e), Some(403), "{e:#}");
    assert_eq!(code_of(&e).as_deref(), Some("E0000006"));
    assert!(fake.with(|s| s.group_named("x")).is_none());
}

#[tokio::test]
async fn ssws_works_and_a_wrong_token_is_refused() {
    let fake = FakeOkta::start(OktaState::new()).await;
    let okta = ssws(&fake);
    let g = okta.create_group("aws#acme#Admin#1", "d").await.unwrap();
    assert_eq!(
        okta.group_by_name("aws#acme#Admin#1").await.unwrap(),
        Some(g)
    );
    let wrong = OktaClient::new(
        &fake.url(),
        OktaAuth::Ssws {
            token: Secret::new("00guessed"),
        },
        TIMEOUT,
    )
    .unwrap();
    let e = wrong.group_by_name("aws#acme#Admin#1").await.unwrap_err();
    assert_eq!(status_of(&e), Some(401));
    assert_eq!(code_of(&e).as_deref(), Some("E0000011"));
    assert_eq!(wrong.calls(), 1, "a 401 with SSWS is not retried");
}

#[tokio::test]
async fn the_group_search_matches_the_exact_name_where_q_would_not() {
    let fake = FakeOkta::start(OktaState::new()).await;
    let (one, twelve) = fake.with(|s| {
        let one = s.add_group("aws#acme#Admin#1");
        let twelve = s.add_group("aws#acme#Admin#12");
        s.add_group("aws#acme-2#Admin#1");
        (one, twelve)
    });
    // what `q=` (a prefix match) would have given
    let q = raw_get(&fake, "/api/v1/groups?q=aws%23acme%23Admin%231").await;
    let ids: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [one.as_str(), twelve.as_str()], "q= matches both");
    let q = raw_get(&fake, "/api/v1/groups?q=aws%23acme").await;
    assert_eq!(
        q.as_array().unwrap().len(),
        3,
        "q=aws#acme matches aws#acme-2 too"
    );

    fake.clear_calls();
    let okta = ssws(&fake);
    let found = okta
        .group_by_name("aws#acme#Admin#1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, one);
    assert_eq!(found.name, "aws#acme#Admin#1");
    assert!(
        okta.group_by_name("aws#acme#Admin")
            .await
            .unwrap()
            .is_none()
    );
    let searched = fake
        .calls()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/v1/groups?"))
        .map(|(_, p)| p)
        .collect::<Vec<_>>();
    assert_eq!(searched.len(), 2, "{searched:?}");
    assert!(
        searched
            .iter()
            .all(|p| p.contains("search=") && !p.contains("q=")),
        "{searched:?}"
    );

    // quotes and backslashes stay inside the search string
    let odd = fake.with(|s| s.add_group(r#"ops "core" \ team"#));
    fake.with(|s| s.add_group("ops "));
    let found = okta.group_by_name(r#"ops "core" \ team"#).await.unwrap();
    assert_eq!(found.map(|g| g.id), Some(odd));
}

#[tokio::test]
async fn two_groups_of_one_name_are_an_error_naming_both() {
    let fake = FakeOkta::start(OktaState::new()).await;
    let (a, b) = fake.with(|s| {
        (
            s.add_group("aws#acme#Admin#1"),
            s.add_group("aws#acme#Admin#1"),
        )
    });
    let e = ssws(&fake)
        .group_by_name("aws#acme#Admin#1")
        .await
        .unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains(&a) && text.contains(&b), "{text}");
    // the same for rules
    let g = fake.with(|s| s.add_group("target"));
    let (r1, r2) = fake.with(|s| {
        (
            s.add_rule("acme-admins", "true", &[g.as_str()]),
            s.add_rule("acme-admins", "true", &[g.as_str()]),
        )
    });
    let e = ssws(&fake).rule_by_name("acme-admins").await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains(&r1) && text.contains(&r2), "{text}");
}

#[tokio::test]
async fn a_create_of_a_taken_name_is_refused_by_okta() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.add_group("aws#acme#Admin#1"));
    let e = ssws(&fake)
        .create_group("aws#acme#Admin#1", "")
        .await
        .unwrap_err();
    assert!(is_already_exists(&e), "{e:#}");
    assert!(!is_ambiguous(&e));
    assert_eq!(fake.with(|s| s.groups_named("aws#acme#Admin#1").len()), 1);
}

#[tokio::test]
async fn a_rate_limit_is_waited_out() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.rate_limit_next = 1);
    let okta = ssws(&fake);
    let start = Instant::now();
    assert!(okta.group_by_name("x").await.unwrap().is_none());
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "waited for the reset: {:?}",
        start.elapsed()
    );
    assert_eq!(okta.calls(), 2, "the 429 and the retry");
    assert_eq!(count(&fake, "GET", "/api/v1/groups"), 2);

    // a creating POST is sent again after a 429: Okta did not act on it
    fake.with(|s| s.rate_limit_next = 1);
    okta.create_group("y", "").await.unwrap();
    assert_eq!(count(&fake, "POST", "/api/v1/groups"), 2);
    assert_eq!(fake.with(|s| s.groups_named("y").len()), 1);
}

#[tokio::test]
async fn a_used_up_rate_limit_delays_the_next_request() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.exhaust_next = 1);
    let okta = ssws(&fake);
    let start = Instant::now();
    okta.group_by_name("x").await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "the first is not delayed"
    );
    okta.group_by_name("x").await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "Remaining: 0 made the next request wait for the reset: {:?}",
        start.elapsed()
    );
    assert_eq!(okta.calls(), 2, "no 429 was needed");
}

#[tokio::test]
async fn a_500_on_a_get_is_retried_and_a_lasting_one_fails() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| {
        s.add_group("x");
        s.fail_next = 2;
    });
    let okta = ssws(&fake);
    assert!(okta.group_by_name("x").await.unwrap().is_some());
    assert_eq!(okta.calls(), 3);
    fake.with(|s| s.fail_next = 100);
    let e = okta.group_by_name("x").await.unwrap_err();
    assert_eq!(status_of(&e), Some(500));
    assert_eq!(code_of(&e).as_deref(), Some("E0000009"));
    assert_eq!(okta.calls(), 3 + 4, "four attempts");
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_looked_for_not_sent_again() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.lost_answer_next = true);
    let okta = ssws(&fake);
    let e = okta.create_group("aws#acme#Admin#1", "").await.unwrap_err();
    assert!(is_ambiguous(&e), "{e:#}");
    assert_eq!(count(&fake, "POST", "/api/v1/groups"), 1, "not sent again");
    // Okta did create it: the caller's look finds it
    let found = okta
        .group_by_name("aws#acme#Admin#1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fake.with(|s| s.groups_named("aws#acme#Admin#1")),
        [found.id]
    );

    // the same for a rule
    let g = fake.with(|s| s.add_group("target"));
    fake.with(|s| s.lost_answer_next = true);
    let e = okta.create_rule("acme", "true", &[g]).await.unwrap_err();
    assert!(is_ambiguous(&e));
    assert_eq!(count(&fake, "POST", "/api/v1/groups/rules"), 1);
    assert!(okta.rule_by_name("acme").await.unwrap().is_some());
}

#[tokio::test]
async fn a_group_not_yet_in_the_search_index_is_not_made_twice() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.search_lag = Duration::from_millis(400));
    let okta = ssws(&fake);
    let made = okta.create_group("aws#acme#Admin#1", "").await.unwrap();
    assert!(
        okta.group_by_name("aws#acme#Admin#1")
            .await
            .unwrap()
            .is_none(),
        "the search index lags"
    );
    let e = okta.create_group("aws#acme#Admin#1", "").await.unwrap_err();
    assert!(is_already_exists(&e), "Okta refuses the second: {e:#}");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        okta.group_by_name("aws#acme#Admin#1").await.unwrap(),
        Some(made)
    );
}

#[tokio::test]
async fn listings_follow_every_page() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.page_size = 2);
    let g = fake.with(|s| s.add_group("target"));
    let exact = fake.with(|s| {
        for suffix in ["a", "b", "c", "d"] {
            s.add_rule(&format!("acme-{suffix}"), "true", &[g.as_str()]);
        }
        s.add_rule("acme", "true", &[g.as_str()])
    });
    let okta = ssws(&fake);
    let rule = okta.rule_by_name("acme").await.unwrap().unwrap();
    assert_eq!(rule.id, exact, "found on the third page");
    assert_eq!(count(&fake, "GET", "/api/v1/groups/rules"), 3);

    // three groups of one name over two pages: all are seen
    let ids = fake.with(|s| (0..3).map(|_| s.add_group("dup")).collect::<Vec<_>>());
    let e = okta.group_by_name("dup").await.unwrap_err();
    let text = format!("{e:#}");
    assert!(ids.iter().all(|id| text.contains(id.as_str())), "{text}");
}

#[tokio::test]
async fn a_link_to_another_origin_is_not_followed() {
    let elsewhere = FakeOkta::start(OktaState::new()).await;
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| {
        s.page_size = 1;
        s.add_group("dup");
        s.add_group("dup");
        s.link_host = Some(elsewhere.addr.to_string());
    });
    let e = ssws(&fake).group_by_name("dup").await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("Link"), "{text}");
    assert!(
        elsewhere.calls().is_empty(),
        "the token went elsewhere: {:?}",
        elsewhere.calls()
    );
    assert_eq!(count(&fake, "GET", "/api/v1/groups"), 1);
}

#[tokio::test]
async fn a_rule_goes_through_its_lifecycle_and_fills_its_group_after_a_delay() {
    let fake = FakeOkta::start(OktaState::new()).await;
    fake.with(|s| s.rule_delay = Duration::from_millis(1000));
    let (eng, target) = fake.with(|s| {
        let eng = s.add_group("eng");
        let target = s.add_group("aws#acme#Admin#111111111111");
        for login in ["alice@example.com", "bob@example.com"] {
            let u = s.add_user(login);
            s.add_member(&eng, &u);
        }
        let carol = s.add_user("carol@example.com");
        s.add_member(&target, &carol);
        (eng, target)
    });
    let okta = ssws(&fake);
    let expression = format!("isMemberOfAnyGroup(\"{eng}\")");
    let rule = okta
        .create_rule("acme-admins", &expression, std::slice::from_ref(&target))
        .await
        .unwrap();
    assert_eq!(rule.status, "INACTIVE", "Okta makes rules inactive");
    assert_eq!(rule.expression, expression);
    assert_eq!(rule.group_ids, std::slice::from_ref(&target));

    okta.activate_rule(&rule.id).await.unwrap();
    okta.activate_rule(&rule.id).await.unwrap();
    let active = okta.rule_by_name("acme-admins").await.unwrap().unwrap();
    assert_eq!(active.status, "ACTIVE");
    let e = okta
        .replace_rule(
            &rule.id,
            "acme-admins",
            "true",
            std::slice::from_ref(&target),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(400), "no replace while active: {e:#}");
    let e = okta.delete_rule(&rule.id).await.unwrap_err();
    assert_eq!(status_of(&e), Some(400), "no delete while active: {e:#}");
    let logins = |f: &FakeOkta| f.with(|s| s.member_logins(&target));
    assert_eq!(logins(&fake).len(), 1, "not filled at once");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        logins(&fake).into_iter().collect::<Vec<_>>(),
        ["alice@example.com", "bob@example.com", "carol@example.com"]
    );

    okta.deactivate_rule(&rule.id).await.unwrap();
    let replaced = okta
        .replace_rule(
            &rule.id,
            "acme-admins-2",
            &expression,
            std::slice::from_ref(&target),
        )
        .await
        .unwrap();
    assert_eq!(replaced.name, "acme-admins-2");
    assert_eq!(replaced.status, "INACTIVE");
    assert_eq!(
        logins(&fake).len(),
        3,
        "deactivation keeps the rule's users"
    );
    okta.delete_rule(&rule.id).await.unwrap();
    okta.delete_rule(&rule.id).await.unwrap();
    assert!(okta.rule_by_name("acme-admins-2").await.unwrap().is_none());
    assert!(fake.with(|s| s.rules.is_empty()));
}

#[tokio::test]
async fn app_assignment_is_idempotent() {
    let fake = FakeOkta::start(OktaState::new()).await;
    let (app, g) = fake.with(|s| (s.add_app("amazon_aws"), s.add_group("aws#acme#Admin#1")));
    let okta = ssws(&fake);
    assert!(!okta.app_group(&app, &g).await.unwrap());
    okta.assign_group_to_app(&app, &g).await.unwrap();
    okta.assign_group_to_app(&app, &g).await.unwrap();
    assert!(okta.app_group(&app, &g).await.unwrap());
    assert_eq!(fake.with(|s| s.apps[&app].groups.len()), 1);
    okta.unassign_group_from_app(&app, &g).await.unwrap();
    okta.unassign_group_from_app(&app, &g).await.unwrap();
    assert!(!okta.app_group(&app, &g).await.unwrap());
    let e = okta
        .assign_group_to_app("0oanosuchapp", &g)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(404));
    assert_eq!(code_of(&e).as_deref(), Some("E0000007"));
    // a deleted group is gone from the app too, and deleting it again is fine
    okta.assign_group_to_app(&app, &g).await.unwrap();
    okta.delete_group(&g).await.unwrap();
    okta.delete_group(&g).await.unwrap();
    assert!(fake.with(|s| s.apps[&app].groups.is_empty()));
}

#[tokio::test]
async fn saml_metadata_is_fetched_as_xml() {
    let fake = FakeOkta::start(OktaState::new()).await;
    let app = fake.with(|s| s.add_app("amazon_aws"));
    let okta = ssws(&fake);
    let xml = okta.saml_metadata(&app).await.unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("EntityDescriptor"));
    assert!(xml.contains(&format!("http://www.okta.com/{app}")));
    let e = okta.saml_metadata("0oanosuchapp").await.unwrap_err();
    assert_eq!(status_of(&e), Some(404));
}

#[tokio::test]
async fn dpop_is_used_when_okta_asks_for_it() {
    let (fake, pem) = fake_with_key().await;
    fake.with(|s| s.require_dpop = true);
    let okta = jwt_client(&fake, &pem, &[]);
    let g = okta.create_group("aws#acme#Admin#1", "").await.unwrap();
    assert_eq!(
        okta.group_by_name("aws#acme#Admin#1").await.unwrap(),
        Some(g)
    );
    // no proof → invalid_dpop_proof; a proof without the nonce → use_dpop_nonce; then a token
    assert_eq!(count(&fake, "POST", "/oauth2/v1/token"), 3);
    assert_eq!(fake.with(|s| s.tokens_issued), 1);
    let token = fake.with(|s| s.tokens.values().next().cloned()).unwrap();
    assert!(
        token.dpop_jwk.is_some(),
        "the token is bound to the client's key"
    );
    // the fake checked each resource request's proof (htm, htu, ath, key): both calls passed
    assert_eq!(okta.calls(), 5);
}

#[tokio::test]
async fn no_write_is_sent_once_the_hold_is_lost() {
    let fake = FakeOkta::start(OktaState::new()).await;
    let okta = ssws(&fake);
    let over = orgvend::hold::Hold::until(Instant::now());
    let (read, write) = orgvend::hold::scope(over, async {
        (
            okta.group_by_name("x").await,
            okta.create_group("x", "").await,
        )
    })
    .await;
    assert!(read.unwrap().is_none(), "reads are allowed");
    let e = write.unwrap_err();
    assert!(
        e.downcast_ref::<orgvend::hold::HoldLost>().is_some(),
        "{e:#}"
    );
    assert_eq!(count(&fake, "POST", "/api/v1/groups"), 0);
    assert!(fake.with(|s| s.group_named("x")).is_none());
}

#[test]
fn okta_errors_say_what_okta_said() {
    let e = OktaError {
        status: Some(400),
        code: Some("E0000001".into()),
        summary: "Api validation failed: name".into(),
    };
    assert_eq!(
        e.to_string(),
        "Okta answered 400 (E0000001): Api validation failed: name"
    );
    assert!(!e.is_ambiguous());
}
