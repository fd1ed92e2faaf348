//! The small world bad requests are aimed at, and what "nothing changed" means
//! for it.

use serde_json::{json, Value};

use crate::helpers::*;

/// A small world to aim bad requests at: a district, one school under it, five
/// seats in the school (the first assigned to `FIXTURE_LEARNER`), one role.
pub struct Fixture {
    pub app: TestApp,
    pub district: u64,
    pub school: u64,
    pub seats: Vec<u64>,
}

pub const FIXTURE_LEARNER: &str = "learner_fixture";
pub const FIXTURE_USER: &str = "teacher_fixture";

/// Every API route that takes a JSON body: (method, path template). `{d}`,
/// `{s}`, `{seat}` and `{free}` are filled in by `Fixture::fill`; a valid body
/// for each comes from `Fixture::valid_body`.
pub const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/district"),
    ("POST", "/api/v1/district/{d}/schools"),
    ("PUT", "/api/v1/tenant/{s}"),
    ("POST", "/api/v1/seats/purchase"),
    ("POST", "/api/v1/seats/allocate"),
    ("POST", "/api/v1/seats/reclaim"),
    ("POST", "/api/v1/roles"),
];

impl Fixture {
    pub async fn new() -> Fixture {
        let app = TestApp::spawn().await;
        let district = app.district("Fixture District").await;
        let school = app.school(district, "Fixture School").await;
        let seats = app.purchase(school, 5).await;
        let r = app.allocate(seats[0], FIXTURE_LEARNER).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": FIXTURE_USER, "tenant_id": school, "role": "teacher"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        Fixture {
            app,
            district,
            school,
            seats,
        }
    }

    pub fn assigned(&self) -> u64 {
        self.seats[0]
    }

    pub fn free(&self) -> u64 {
        self.seats[1]
    }

    /// Replaces the placeholders of a path or body template with fixture ids.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{d}", &self.district.to_string())
            .replace("{s}", &self.school.to_string())
            .replace("{seat}", &self.assigned().to_string())
            .replace("{free}", &self.free().to_string())
    }

    /// A valid body for a route template of `BODY_ROUTES`.
    pub fn valid_body(&self, path: &str) -> Value {
        match path {
            "/api/v1/district" | "/api/v1/district/{d}/schools" => json!({"name": "Valid Name"}),
            "/api/v1/tenant/{s}" => json!({"name": "Fixture School", "is_active": true}),
            "/api/v1/seats/purchase" => json!({"tenant_id": self.school, "count": 1}),
            "/api/v1/seats/allocate" => json!({"seat_id": self.free(), "learner_id": "learner_new"}),
            "/api/v1/seats/reclaim" => json!({"seat_id": self.assigned(), "reason": "fuzz"}),
            "/api/v1/roles" => json!({"user_id": "user_new", "tenant_id": self.school, "role": "admin"}),
            other => panic!("no valid body for {other}"),
        }
    }

    /// Everything a client can observe about the fixture, in one value.
    pub async fn snapshot(&self) -> Value {
        let app = &self.app;
        let mut seats = Vec::new();
        for &s in &self.seats {
            seats.push(json!({"seat": app.seat(s).await, "audit": app.audit(s).await}));
        }
        let district = app.get(&format!("/api/v1/district/{}", self.district)).await;
        let school = app.get(&format!("/api/v1/tenant/{}", self.school)).await;
        let roles_d = app.get(&format!("/api/v1/roles?tenantId={}", self.district)).await;
        let roles_s = app.get(&format!("/api/v1/roles?tenantId={}", self.school)).await;
        let user = app.get(&format!("/api/v1/users/{FIXTURE_USER}/tenants")).await;
        for r in [&district, &school, &roles_d, &roles_s, &user] {
            assert_eq!(r.status, 200, "{}", r.body);
        }
        json!({
            "district": district.body,
            "school": school.body,
            "summary_d": app.summary(self.district).await,
            "summary_s": app.summary(self.school).await,
            "roles_d": roles_d.body,
            "roles_s": roles_s.body,
            "user": user.body,
            "seats": seats,
        })
    }

    /// The server is healthy, the fixture is exactly as `before`, and no
    /// tenant or seat was created (ids are handed out in order, so anything
    /// created would sit right after the fixture's last id).
    pub async fn assert_unchanged(&self, before: &Value) {
        assert!(self.app.healthy().await, "server is not healthy");
        let after = self.snapshot().await;
        assert_eq!(&after, before, "a refused request changed state");
        let last_seat = self.seats.iter().copied().max().unwrap_or(0);
        for id in 1..=3 {
            let t = self.app.get(&format!("/api/v1/tenant/{}", self.school + id)).await;
            assert_eq!(t.status, 404, "tenant {} exists: {}", self.school + id, t.body);
            let s = self.app.get(&format!("/api/v1/seats/{}", last_seat + id)).await;
            assert_eq!(s.status, 404, "seat {} exists: {}", last_seat + id, s.body);
        }
        let summary = self.app.summary(self.school).await;
        assert_eq!(summary["total_seats"], json!(self.seats.len()), "{summary}");
        let (free, reserved, assigned) = self.app.count_seats(&self.seats).await;
        assert_eq!(
            (
                summary["free_seats"].as_u64(),
                summary["reserved_seats"].as_u64(),
                summary["assigned_seats"].as_u64()
            ),
            (Some(free), Some(reserved), Some(assigned)),
            "summary disagrees with the seats: {summary}"
        );
    }
}
