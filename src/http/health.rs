use serde_json::json;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

pub fn routes() -> BoxedFilter<(impl Reply,)> {
    let root = warp::path::end().and(warp::get()).map(|| {
        warp::reply::json(&json!({"service": "tenant-svc", "status": "running", "version": env!("CARGO_PKG_VERSION")}))
    });
    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "healthy"})));
    let api_health = warp::path!("api" / "v1" / "health")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"message": "Tenant service is healthy"})));
    root.or(health).unify().or(api_health).unify().boxed()
}
