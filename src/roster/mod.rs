//! Roster imports: a district's OneRoster 1.2 CSV package (1EdTech's CSV
//! binding), read and checked (`package`, `binding`), then turned into a
//! plan against the district as it is (`plan`). Everything here is pure: no
//! I/O but reading the bytes it is handed, no engine, no store. The engine
//! applies a plan through its own operations (`engine::roster`).
//!
//! What is read: `manifest.csv`, `orgs.csv`, `users.csv` and `roles.csv`.
//! Any other file of the binding (classes, enrollments, ...) may be in the
//! package and is ignored.

pub mod binding;
pub mod package;
pub mod plan;

pub use binding::{parse, Date, FileMode, Package, Problem, Problems, MAX_PROBLEMS};
pub use package::{read_dir, read_zip, write_zip, Files, PackageError};
pub use plan::{plan, Current, CurrentRole, CurrentSchool, Place, Plan, SchoolChange, SchoolPlan, SchoolRef};
