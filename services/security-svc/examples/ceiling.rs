//! The benchmark ceiling: a bare actix-web server whose one handler returns a constant, with the
//! same worker count as security-svc. `scripts/bench.sh security` loads it exactly like the
//! real routes, so their throughput reads as a fraction of what the framework alone allows.
//!
//! Usage: `ceiling [PORT]` (default 8299); `CEILING_WORKERS` sets the workers (default: cores).

use actix_web::{App, HttpResponse, HttpServer, web};

/// Reads the request body, as every transit handler does, and answers a constant.
async fn constant(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(body);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"data":{"ciphertext":"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","key_version":1}}"#)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or(8299);
    let workers = std::env::var("CEILING_WORKERS")
        .ok()
        .and_then(|workers| workers.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    HttpServer::new(|| App::new().default_service(web::to(constant)))
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
