//! Criterion benchmarks of the per-transaction hot paths: drawing parameters, binding them,
//! recording latency, taking a pacer slot, and the LSN-to-time interpolation of the sampler.
//!
//!     cargo bench --bench hot_paths

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgbench_repl::exec::Pace;
use pgbench_repl::record::new_histogram;
use pgbench_repl::sampler::timeline::LsnTimeline;
use pgbench_repl::workload::generators::Generator;
use pgbench_repl::workload::value::Value;
use postgres_types::{ToSql, Type};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn generators(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(1);
    for spec in [
        "uniform(1, 100000)",
        "zipf(1, 10000, 1.1)",
        "gaussian(1, 1000)",
        "text(100)",
        "seq()",
    ] {
        let g = Generator::parse(spec).unwrap();
        c.bench_function(&format!("generate {spec}"), |b| {
            b.iter(|| black_box(g.sample(&mut rng)))
        });
    }
}

fn binding(c: &mut Criterion) {
    let mut buf = BytesMut::with_capacity(256);
    let int = Value::Int(4242);
    c.bench_function("bind int4", |b| {
        b.iter(|| {
            buf.clear();
            black_box(int.to_sql_checked(&Type::INT4, &mut buf).unwrap());
        })
    });
    let text = Value::Text("x".repeat(100));
    c.bench_function("bind text(100)", |b| {
        b.iter(|| {
            buf.clear();
            black_box(text.to_sql_checked(&Type::TEXT, &mut buf).unwrap());
        })
    });
    let num = Value::Text("12345.678".into());
    c.bench_function("bind numeric", |b| {
        b.iter(|| {
            buf.clear();
            black_box(num.to_sql_checked(&Type::NUMERIC, &mut buf).unwrap());
        })
    });
}

fn recording(c: &mut Criterion) {
    let mut h = new_histogram();
    let mut v = 1u64;
    c.bench_function("record latency (HDR)", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1) % 1_000_000 + 1;
            h.saturating_record(black_box(v));
        })
    });
}

fn pacing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let pace = Pace::default();
    rt.block_on(async { pace.set_rate(tokio::time::Instant::now(), 1e6) });
    c.bench_function("pacer slot", |b| b.iter(|| black_box(pace.next())));
}

fn interpolation(c: &mut Criterion) {
    let mut t = LsnTimeline::default();
    for i in 0..600u64 {
        t.push(i as f64 * 0.1, 1_000_000 + i * 16_384);
    }
    c.bench_function("lag by the LSN timeline (600 points)", |b| {
        b.iter(|| black_box(t.lag_at(60.0, black_box(1_000_000 + 300 * 16_384 + 100))))
    });
}

criterion_group!(
    benches,
    generators,
    binding,
    recording,
    pacing,
    interpolation
);
criterion_main!(benches);
