//! The `users` table.

use sqlx::PgConnection;
use uuid::Uuid;

/// A stored user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
}

/// Inserts a user; fails with a unique violation on `users_email_key` if the e-mail is taken.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    email: &str,
    password_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT id, email, password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(conn)
        .await
}
