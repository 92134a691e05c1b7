//! Several `orgvend serve` processes on one PostgreSQL: deliveries spread across them, one
//! replica SIGKILLed in the middle of an apply. Every delivery is processed, the apply is
//! finished by a survivor, and there is one account (and one repository) per declaration.

mod common;

use common::moto::Moto;
use common::pg::Postgres;
use common::process::{Serve, signal, spawn_env};
use common::world::{ALICE, BOB, add_account_mr, fixture_repo, initial_state, merge_payload};
use common::{Delivery, eventually, fake_gitlab::FakeGitlab};
use std::time::{Duration, Instant};

const MERGED: u64 = 4;
const OPEN: u64 = 3;

fn config(
    dir: &std::path::Path,
    i: usize,
    store: &str,
    gitlab: &str,
    moto: &str,
) -> std::path::PathBuf {
    let metadata =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idp-metadata.xml");
    let path = dir.join(format!("replica{i}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_seconds = 2\nreplica_id = \"replica{i}\"\n[store]\nurl = \"{store}\"\n\
             [gitlab]\nurl = \"{gitlab}\"\nproject = \"infra/subaccounts\"\n\
             [worker]\npoll_interval_ms = 50\nlease_seconds = 2\nbackoff_base_seconds = 1\n\
             [aws]\nendpoint_url = \"{moto}\"\nsaml_metadata_file = \"{}\"\npoll_interval_ms = 50\nassume_role_timeout_seconds = 30\n\
             [bootstrap]\noidc_issuer = \"https://gitlab.example.com\"\n\
             [drift]\ninterval_seconds = 0\n",
            metadata.display()
        ),
    )
    .unwrap();
    path
}

/// Waits until MR `iid`'s note says it was applied.
async fn applied(gitlab: &FakeGitlab, iid: u64, within: Duration) {
    eventually(within, Duration::from_millis(100), || async {
        let done = gitlab.with(|s| {
            s.bot_notes(iid)
                .first()
                .is_some_and(|n| n.body.contains("✅ Applied"))
        });
        if done {
            Ok(())
        } else {
            Err(format!("!{iid} not applied yet"))
        }
    })
    .await;
}

async fn post(serve: &Serve, d: &Delivery) {
    let r = d.send_to(serve.addr).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// PostgreSQL, moto with an organization, and the fake GitLab holding an MR per
/// `(slug, approvers)` (numbered from 1), with the group the account projects go to.
struct Stage {
    _pg: Postgres,
    store_url: String,
    moto: Moto,
    gitlab: FakeGitlab,
    dir: tempfile::TempDir,
}

async fn stage(mrs: &[(String, &[u64])]) -> Stage {
    let pg = Postgres::start();
    let store_url = pg.database().await;
    let moto = Moto::start();
    moto.organization().await;
    let mut state = initial_state(&fixture_repo());
    state.group_ids.insert("aws-accounts".into(), 77);
    for (i, (slug, approvers)) in mrs.iter().enumerate() {
        add_account_mr(&mut state, i as u64 + 1, slug, approvers);
    }
    Stage {
        _pg: pg,
        store_url,
        moto,
        gitlab: FakeGitlab::start(state).await,
        dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_work_and_survive_a_sigkill_mid_apply() {
    let approved: &[u64] = &[ALICE];
    let mrs: Vec<(String, &[u64])> = (1..=MERGED)
        .map(|iid| (format!("r{iid}"), approved))
        .chain((MERGED + 1..=MERGED + OPEN).map(|iid| (format!("o{iid}"), &[][..])))
        .collect();
    let Stage {
        _pg,
        store_url,
        moto,
        gitlab,
        dir,
    } = stage(&mrs).await;
    let env = common::moto::PROCESS_ENV;
    let mut replicas: Vec<Serve> = (0..3)
        .map(|i| {
            spawn_env(
                &config(dir.path(), i, &store_url, &gitlab.url(), &moto.url),
                &env,
            )
        })
        .collect();

    // the MRs merge once the replicas run (what merged before the first run waits until
    // asked); deliveries spread across the replicas: the merges, and updates of open MRs
    let merges: Vec<(u64, String)> = (1..=MERGED)
        .map(|iid| (iid, gitlab.with(|s| s.merge(iid, BOB))))
        .collect();
    let mut n = 0;
    for (iid, sha) in &merges {
        let d = Delivery::new(
            "Merge Request Hook",
            merge_payload(*iid, BOB, sha).to_string().into_bytes(),
        );
        post(&replicas[n % 3], &d).await;
        n += 1;
    }
    for iid in MERGED + 1..=MERGED + OPEN {
        for _ in 0..3 {
            post(&replicas[n % 3], &Delivery::mr(iid, "update")).await;
            n += 1;
        }
    }

    // SIGKILL the replica that is applying, as soon as one is
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = 'found: loop {
        for (i, r) in replicas.iter().enumerate() {
            if r.log.try_iter().any(|l| l.contains("applying")) {
                break 'found i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replica started an apply within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    signal(&replicas[victim].child, "-KILL");
    replicas[victim].child.wait().unwrap();

    // the survivors finish everything
    eventually(
        Duration::from_secs(180),
        Duration::from_millis(200),
        || async {
            let applied = gitlab.with(|s| {
                (1..=MERGED)
                    .filter(|iid| {
                        s.bot_notes(*iid)
                            .first()
                            .is_some_and(|n| n.body.contains("✅ Applied"))
                    })
                    .count() as u64
            });
            let reviewed = gitlab
                .with(|s| (MERGED + 1..=MERGED + OPEN).all(|iid| s.bot_notes(iid).len() == 1));
            if applied == MERGED && reviewed {
                Ok(())
            } else {
                Err(format!(
                    "after the SIGKILL: {applied} of {MERGED} applied, reviews done: {reviewed}"
                ))
            }
        },
    )
    .await;
    // every delivery processed (none left pending, running or parked)
    let store = orgvend::store::Store::open(&store_url).await.unwrap();
    let all = eventually(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let all = store.list(None, 10_000).await.unwrap();
            let left: Vec<_> = all
                .iter()
                .filter(|d| !matches!(d.state.as_str(), "done" | "ignored"))
                .map(|d| (d.id, d.kind.clone(), d.state.clone()))
                .collect();
            if left.is_empty() {
                Ok(all)
            } else {
                Err(format!("deliveries not processed: {left:?}"))
            }
        },
    )
    .await;
    assert!(all.len() as u64 >= MERGED + 3 * OPEN);
    assert!(
        all.iter().any(|d| d.attempts >= 2),
        "the killed replica's delivery was claimed again by a survivor"
    );
    // one account and one repository per declaration; one note per MR
    let accounts = moto.accounts().await;
    for iid in 1..=MERGED {
        let name = format!("client-r{iid}");
        assert_eq!(
            accounts.iter().filter(|(_, n, _)| *n == name).count(),
            1,
            "{name}: {accounts:?}"
        );
    }
    assert!(
        !accounts.iter().any(|(_, n, _)| n.starts_with("client-o")),
        "open MRs are not applied"
    );
    gitlab.with(|s| {
        assert_eq!(s.projects.len() as u64, MERGED);
        for p in s.projects.values() {
            assert_eq!(p.commits.len(), 1, "{}", p.path_with_namespace);
        }
        for iid in 1..=MERGED + OPEN {
            assert_eq!(s.bot_notes(iid).len(), 1, "MR {iid}");
        }
    });
}

/// One replica on PostgreSQL, SIGKILLed in the middle of an apply and started again: it
/// takes back its own claim at once (its name is stable) instead of waiting for the lease,
/// and reconciliation, running every second meanwhile, queues the apply no second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_resumes_its_own_work_at_once() {
    let Stage {
        _pg,
        store_url,
        moto,
        gitlab,
        dir,
    } = stage(&[("phoenix".to_string(), &[ALICE])]).await;
    let path = config(dir.path(), 0, &store_url, &gitlab.url(), &moto.url);
    // the default lease (30 s), and reconciliation every second
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("lease_seconds = 2\n", "")
        .replace("[gitlab]\n", "[gitlab]\nreconcile_interval_seconds = 1\n");
    std::fs::write(&path, text).unwrap();
    let env = common::moto::PROCESS_ENV;
    let first = spawn_env(&path, &env);
    let sha = gitlab.with(|s| s.merge(1, BOB));
    post(
        &first,
        &Delivery::new(
            "Merge Request Hook",
            merge_payload(1, BOB, &sha).to_string().into_bytes(),
        ),
    )
    .await;
    eventually(
        Duration::from_secs(60),
        Duration::from_millis(10),
        || async {
            if moto
                .accounts()
                .await
                .iter()
                .any(|(_, n, _)| n == "client-phoenix")
            {
                Ok(())
            } else {
                Err("no account yet".to_string())
            }
        },
    )
    .await;
    signal(&first.child, "-KILL");
    drop(first);
    let restarted = Instant::now();
    let _again = spawn_env(&path, &env);
    applied(&gitlab, 1, Duration::from_secs(60)).await;
    assert!(
        restarted.elapsed() < Duration::from_secs(20),
        "took {:?}: the restart waited for its own lease",
        restarted.elapsed()
    );
    let store = orgvend::store::Store::open(&store_url).await.unwrap();
    let merges: Vec<_> = store
        .list(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.ordering_key.as_deref() == Some("mr:1") && d.action == "merged")
        .map(|d| (d.id, d.state, d.attempts))
        .collect();
    assert!(
        merges.len() <= 2,
        "reconciliation piled up applies: {merges:?}"
    );
    let accounts = moto.accounts().await;
    assert_eq!(
        accounts
            .iter()
            .filter(|(_, n, _)| n == "client-phoenix")
            .count(),
        1
    );
}

/// A TCP tap in front of moto for one replica: what it sends, and when. Armed, it holds
/// every read past the `after`-th unforwarded (the replica waits for its answer) until the
/// gate opens (forwarded) or is cut (that connection dropped): a replica stopped there
/// cannot have finished its apply before the test stalls it, however loaded the machine.
struct Tap {
    url: String,
    sent: std::sync::Arc<std::sync::Mutex<Vec<(Instant, usize)>>>,
    gate: tokio::sync::watch::Sender<Gate>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Gate {
    Open,
    Armed { after: usize },
    Cut,
}

async fn tap(upstream: &str, gate: Gate) -> Tap {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent: std::sync::Arc<std::sync::Mutex<Vec<(Instant, usize)>>> = Default::default();
    let (gate, _) = tokio::sync::watch::channel(gate);
    let log = sent.clone();
    let gates = gate.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let log = log.clone();
            let mut gate = gates.subscribe();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let count = {
                                let mut log = log.lock().unwrap();
                                log.push((Instant::now(), n));
                                log.len()
                            };
                            if matches!(*gate.borrow_and_update(), Gate::Armed { after } if count > after)
                            {
                                let open = loop {
                                    if gate.changed().await.is_err() {
                                        break false;
                                    }
                                    match *gate.borrow_and_update() {
                                        Gate::Open => break true,
                                        Gate::Cut => break false,
                                        Gate::Armed { .. } => {}
                                    }
                                };
                                if !open {
                                    return;
                                }
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
        }
    });
    Tap { url, sent, gate }
}

/// A replica stalled mid-apply (SIGSTOP: a paused VM) past its lease: the other replica
/// takes the delivery over; when the stalled one wakes up it sends AWS nothing more — its
/// hold on the delivery is over — and the apply is finished once, by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replica_that_wakes_up_makes_no_aws_call() {
    let Stage {
        _pg,
        store_url,
        moto,
        gitlab,
        dir,
    } = stage(&[("sleeper".to_string(), &[ALICE])]).await;
    let env = common::moto::PROCESS_ENV;
    let mut taps = Vec::new();
    let mut replicas = Vec::new();
    for i in 0..2 {
        let t = tap(&moto.url, Gate::Armed { after: 3 }).await;
        let path = config(dir.path(), i, &store_url, &gitlab.url(), &t.url);
        replicas.push(spawn_env(&path, &env));
        taps.push(t);
    }
    let sha = gitlab.with(|s| s.merge(1, BOB));
    post(
        &replicas[0],
        &Delivery::new(
            "Merge Request Hook",
            merge_payload(1, BOB, &sha).to_string().into_bytes(),
        ),
    )
    .await;

    // stall the replica that applies, once it has talked to AWS (drift is off in these
    // replicas: its reads would be taken for the apply's); its tap holds what it sends next,
    // so it is mid-apply when stopped
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = 'found: loop {
        for (i, t) in taps.iter().enumerate() {
            if t.sent.lock().unwrap().len() >= 3 {
                break 'found i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replica called AWS within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    taps[1 - victim].gate.send_replace(Gate::Open);
    signal(&replicas[victim].child, "-STOP");
    let stalled = Instant::now();
    // well past its 2 s lease: the other replica claims the delivery meanwhile
    tokio::time::sleep(Duration::from_secs(6)).await;
    let woke = Instant::now();
    signal(&replicas[victim].child, "-CONT");
    // what it sent before the stall never reaches AWS: those connections drop, and whatever
    // it would send again is after `woke`
    taps[victim].gate.send_replace(Gate::Cut);

    applied(&gitlab, 1, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: Vec<_> = taps[victim]
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at >= woke)
        .cloned()
        .collect();
    // What the store says of the merge delivery: its state and how many claims it took.
    let store = orgvend::store::Store::open(&store_url).await.unwrap();
    let merged: Vec<_> = store
        .list(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.action == "merged")
        .map(|d| (d.state, d.attempts))
        .collect();
    // Bytes after waking are allowed only under a new claim: while the stalled replica held
    // the apply lock, the other's attempt may have failed and been retried, and a third
    // claim may be the woken replica's own (noted: the lock is held through a stall).
    let claims = merged.iter().map(|(_, a)| *a).max().unwrap_or(0);
    assert!(
        after.is_empty() || claims >= 3,
        "the replica that lost its lease sent AWS {} writes after it woke up (stalled at {:?}), and the delivery took only {claims} claims",
        after.len(),
        stalled
    );
    // The apply was finished under a live claim: the other replica's, or, when the other's
    // attempt gave up on the apply lock the stalled one held, a later claim of the woken one.
    let other = 1 - victim;
    let other_went_on = taps[other]
        .sent
        .lock()
        .unwrap()
        .iter()
        .any(|(at, _)| *at > stalled);
    assert!(
        other_went_on || claims >= 3,
        "the apply was finished by a later claim (the merge delivery: {merged:?}; replica {victim} stalled)"
    );
    // once: one account, the delivery done
    let accounts = moto.accounts().await;
    assert_eq!(
        accounts
            .iter()
            .filter(|(_, n, _)| n == "client-sleeper")
            .count(),
        1,
        "{accounts:?}"
    );
    assert!(
        merged.iter().all(|(s, _)| s == "done") && merged.iter().any(|(_, a)| *a >= 2),
        "{merged:?}"
    );
}
