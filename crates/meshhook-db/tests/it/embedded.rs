use meshhook_db::embedded::{Cluster, Error, Options, find_binaries_in};

fn opts(dir: &std::path::Path) -> Options {
    let mut o = Options::new(dir);
    o.fsync = false;
    o
}

#[tokio::test]
async fn cluster_starts_survives_a_restart_on_the_same_dir_and_refuses_a_second_owner() {
    let tmp = std::env::temp_dir().join(format!(
        "meshhook-embedded-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    // First start: initialise and create a table.
    let mut first = Cluster::start_async(opts(&tmp)).await.expect("first start");
    let pool = sqlx::PgPool::connect(&first.url()).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // A second process on the same data dir is refused with a clear message.
    let err = Cluster::start(&opts(&tmp)).expect_err("the data dir is locked");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("in use by another MeshHook process")
            && msg.contains(&std::process::id().to_string()),
        "{msg}"
    );

    first.stop().unwrap();
    drop(first);

    // Second start on the same dir: same data, no re-initialisation.
    let second = Cluster::start_async(opts(&tmp))
        .await
        .expect("second start");
    let pool = sqlx::PgPool::connect(&second.url()).await.unwrap();
    let v: i32 = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, 42);
    pool.close().await;
    drop(second);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn binaries_are_found_on_path_or_in_the_debian_layout_and_missing_ones_give_one_clear_line() {
    let empty =
        std::env::temp_dir().join(format!("meshhook-nobin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&empty).unwrap();
    let err = find_binaries_in(None, Some(empty.clone().into_os_string()), &empty).unwrap_err();
    assert!(matches!(err, Error::BinariesNotFound));
    let msg = err.to_string();
    assert!(
        msg.contains("apt-get install postgresql") && msg.contains("DATABASE_URL"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one line");

    // A fake Debian layout with two majors: the newest wins.
    for major in ["13", "15"] {
        let bin = empty.join("lib").join(major).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for b in ["initdb", "pg_ctl", "postgres"] {
            std::fs::write(bin.join(b), "").unwrap();
        }
    }
    let found = find_binaries_in(None, None, &empty.join("lib")).unwrap();
    assert_eq!(found, empty.join("lib").join("15").join("bin"));
    // An explicit MESHHOOK_PG_BIN wins over everything.
    let explicit = empty.join("lib").join("13").join("bin");
    assert_eq!(
        find_binaries_in(Some(explicit.clone()), None, &empty.join("lib")).unwrap(),
        explicit
    );
    std::fs::remove_dir_all(&empty).unwrap();
}
