//! The `netfault` benchmark scenario (`scripts/bench.sh --scenario netfault`): every
//! strategy behind the network fault lab, one after the other; see
//! `harness::bench::netfault`. Needs root and `/dev/net/tun`.
//!
//! netfault_bench [--strategies a,b,...] [--quick] [--seed N] [--out FILE]
//!                [--hikwatch PATH] [--sdk DIR] [--commit TEXT]

use std::path::PathBuf;
use std::process::ExitCode;

use harness::bench::netfault::{self, NetfaultPlan};
use harness::bench::{STRATEGIES, report};

const USAGE: &str = "usage: netfault_bench [--strategies poll,event,queue,hybrid,naive,sdk] \
[--quick] [--seed N] [--out FILE] [--hikwatch PATH] [--sdk DIR] [--commit TEXT]";

fn main() -> ExitCode {
    let mut strategies: Vec<String> = STRATEGIES.iter().map(|s| (*s).to_string()).collect();
    let (mut quick, mut seed, mut out, mut hikwatch, mut sdk, mut commit) =
        (false, 7u64, None, None, None, "unknown".to_string());
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        let r: Result<(), String> = match a.as_str() {
            "--strategies" => {
                val().map(|v| strategies = v.split(',').map(str::to_string).collect())
            }
            "--quick" => {
                quick = true;
                Ok(())
            }
            "--seed" => val().and_then(|v| {
                seed = v.parse().map_err(|_| format!("--seed: {v:?}"))?;
                Ok(())
            }),
            "--out" => val().map(|v| out = Some(PathBuf::from(v))),
            "--hikwatch" => val().map(|v| hikwatch = Some(PathBuf::from(v))),
            "--sdk" => val().map(|v| sdk = Some(PathBuf::from(v))),
            "--commit" => val().map(|v| commit = v),
            _ => Err(format!("unknown argument {a}")),
        };
        if let Err(e) = r {
            eprintln!("netfault_bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if let Some(why) = harness::netlab::unavailable() {
        eprintln!("netfault_bench: {why}");
        return ExitCode::from(1);
    }
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let abs = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    let hikwatch = abs(hikwatch.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("hikwatch")))
            .unwrap_or_else(|| "hikwatch".into())
    }));
    let sdk = abs(sdk.unwrap_or_else(|| harness::real_sdk_dir(&repo.display().to_string())));
    let plan = if quick {
        NetfaultPlan::quick(seed)
    } else {
        NetfaultPlan::full(seed)
    };
    // The strategies run side by side, each with a lab, a fleet and a daemon of its own.
    let results: Vec<(String, Result<netfault::NetfaultRow, String>)> = std::thread::scope(|sc| {
        let handles: Vec<_> = strategies
            .iter()
            .map(|s| {
                let (hikwatch, sdk) = (&hikwatch, &sdk);
                sc.spawn(move || {
                    eprintln!("netfault_bench: {s} ...");
                    (s.clone(), netfault::run_strategy(s, hikwatch, sdk, plan))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| ("?".into(), Err("the run panicked".into())))
            })
            .collect()
    });
    let mut rows = Vec::new();
    for (s, r) in results {
        match r {
            Ok(r) => {
                eprintln!("netfault_bench: {s}: {r:?}");
                rows.push(r);
            }
            Err(e) => eprintln!("netfault_bench: {s}: {e}"),
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let m = report::Machine::here(&commit, &command, seed);
    let machine = format!(
        "Machine: {} ({} cores, {:.1} GiB), kernel {}, {}; hikwatch {}; `{}`.",
        m.cpu, m.cores, m.mem_gib, m.kernel, m.date, m.commit, m.command
    );
    let md = netfault::report(&rows, plan, &machine);
    print!("{md}");
    if let Some(p) = out {
        if let Err(e) = std::fs::write(&p, &md) {
            eprintln!("netfault_bench: {}: {e}", p.display());
            return ExitCode::from(1);
        }
    }
    if rows.len() == strategies.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
