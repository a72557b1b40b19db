//! Classification's database: the result for each case.

use jiesu_kit::{CaseKey, Db, Tx, with_tx};

use jiesu_proto::v1::Location;

use crate::{Error, domain::Mark};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassificationRow {
    pub case_id: String,
    pub case_no: String,
    pub category: String,
    pub sub_item: String,
    pub urgency: String,
    pub confidence: f64,
    /// JSON array of the keywords that matched.
    pub matched_keywords: String,
    pub fallback: bool,
    pub classified_at: i64,
    /// The version of the model that decided; empty for the keyword classifier.
    pub model_version: String,
    /// 咨询/求助/投诉/举报/建议 as a key; empty when not decided.
    pub request_type: String,
    /// JSON array of [sub-item, probability], likeliest first.
    pub candidates: String,
    /// '' decided by the classifier alone; 'waiting', 'confirmed', 'reclassified'.
    pub review: String,
}

impl ClassificationRow {
    /// The sub-items weighed, likeliest first.
    pub fn candidates(&self) -> Vec<(String, f32)> {
        serde_json::from_str(&self.candidates).unwrap_or_default()
    }
}

/// The review states of a classification.
pub mod review {
    pub const NONE: &str = "";
    pub const WAITING: &str = "waiting";
    pub const CONFIRMED: &str = "confirmed";
    pub const RECLASSIFIED: &str = "reclassified";
}

/// Records a case's classification; `false` when the case was classified before.
pub async fn record_classification(tx: &mut Tx, row: &ClassificationRow) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO classifications
             (case_id, case_no, category, sub_item, urgency, confidence, matched_keywords, fallback, classified_at,
              model_version, request_type, candidates, review)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (case_id) DO NOTHING")
        .bind(&row.case_id).bind(&row.case_no).bind(&row.category).bind(&row.sub_item).bind(&row.urgency)
        .bind(row.confidence).bind(&row.matched_keywords).bind(row.fallback).bind(row.classified_at)
        .bind(&row.model_version).bind(&row.request_type).bind(&row.candidates).bind(&row.review)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

const CLASSIFICATION_COLUMNS: &str = "case_id, case_no, category, sub_item, urgency, confidence, matched_keywords, fallback,
    classified_at, model_version, request_type, candidates, review";

pub async fn get(db: &Db, key: &CaseKey) -> Result<Option<ClassificationRow>, Error> {
    let select = format!("SELECT {CLASSIFICATION_COLUMNS} FROM classifications");
    Ok(db.rows_of_case(&select, key, "").await?.pop())
}

/// A waiting case's classification, locked for its release within `tx`; `None` when the case
/// is unknown.
async fn classification_in(tx: &mut Tx, case_id: &str) -> Result<Option<ClassificationRow>, Error> {
    let sql = format!("SELECT {CLASSIFICATION_COLUMNS} FROM classifications WHERE case_id = $1");
    Ok(
        with_tx!(tx, conn => sqlx::query_as::<_, ClassificationRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(case_id).fetch_optional(conn).await)?,
    )
}

// ------------------------------------------------------------------------------- the review queue

/// Where a case is: the place, never who.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Place {
    pub street: String,
    pub community: String,
    pub grid: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
}

impl Place {
    pub fn of(l: Option<&Location>) -> Place {
        l.map(|l| Place {
            street: l.street.clone(),
            community: l.community.clone(),
            grid: l.grid.clone(),
            address: l.address.clone(),
            latitude: l.latitude,
            longitude: l.longitude,
        })
        .unwrap_or_default()
    }

    pub fn to_location(&self) -> Location {
        Location {
            street: self.street.clone(),
            community: self.community.clone(),
            grid: self.grid.clone(),
            address: self.address.clone(),
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }
}

/// A case waiting for a person, with what it goes on with once released.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    pub case_id: String,
    pub case_no: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub street: String,
    /// JSON of a [`Place`].
    pub location: String,
    pub citizen_key: String,
    pub why: String,
    pub waiting_since: i64,
    pub released_at: i64,
}

impl ReviewRow {
    pub fn place(&self) -> Place {
        serde_json::from_str(&self.location).unwrap_or_default()
    }
}

const REVIEW_COLUMNS: &str =
    "case_id, case_no, channel, title, description, street, location, citizen_key, why, waiting_since, released_at";

pub async fn insert_review(tx: &mut Tx, r: &ReviewRow) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO reviews ({REVIEW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (case_id) DO NOTHING"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&r.case_id).bind(&r.case_no).bind(&r.channel).bind(&r.title).bind(&r.description).bind(&r.street).bind(&r.location)
        .bind(&r.citizen_key).bind(&r.why).bind(r.waiting_since).bind(r.released_at)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The cases waiting for a person (of `street`, or all when empty), the longest waiting first,
/// with their classifications; and how many wait in all.
pub async fn waiting(db: &Db, street: &str, limit: u32) -> Result<(Vec<(ReviewRow, ClassificationRow)>, i64), Error> {
    let sql = format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews WHERE released_at = 0 AND ($1 = '' OR street = $1)
         ORDER BY waiting_since, case_id LIMIT $2"
    );
    let reviews = jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, ReviewRow>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(street).bind(i64::from(limit)).fetch_all(pool).await)?;
    let (total,) = jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, (i64,)>(
        "SELECT COUNT(*) FROM reviews WHERE released_at = 0 AND ($1 = '' OR street = $1)")
        .bind(street).fetch_one(pool).await)?;
    let mut out = Vec::with_capacity(reviews.len());
    for r in reviews {
        if let Some(c) = get(db, &CaseKey::Id(r.case_id.clone())).await? {
            out.push((r, c));
        }
    }
    Ok((out, total))
}

/// A waiting case and its classification, to release within `tx`; `None` when the case never
/// waited; the row as it is when it no longer waits.
pub async fn review_in(tx: &mut Tx, case_id: &str) -> Result<Option<(ReviewRow, ClassificationRow)>, Error> {
    let sql = format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE case_id = $1");
    let Some(review) =
        with_tx!(tx, conn => sqlx::query_as::<_, ReviewRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(case_id).fetch_optional(conn).await)?
    else {
        return Ok(None);
    };
    Ok(classification_in(tx, case_id).await?.map(|c| (review, c)))
}

/// Releases a waiting case with `decided` — its classification as a person decided it; `false`
/// when it was released already (by another reviewer, a moment before).
pub async fn release(tx: &mut Tx, decided: &ClassificationRow, at_ms: i64) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query("UPDATE reviews SET released_at = $2 WHERE case_id = $1 AND released_at = 0")
        .bind(&decided.case_id).bind(at_ms).execute(conn).await.map(|r| r.rows_affected()))?;
    if n != 1 {
        return Ok(false);
    }
    with_tx!(tx, conn => sqlx::query(
        "UPDATE classifications SET category = $2, sub_item = $3, urgency = $4, request_type = $5, review = $6,
                confidence = $7, matched_keywords = $8
         WHERE case_id = $1")
        .bind(&decided.case_id).bind(&decided.category).bind(&decided.sub_item).bind(&decided.urgency)
        .bind(&decided.request_type).bind(&decided.review).bind(decided.confidence).bind(&decided.matched_keywords)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(true)
}

/// A person's decision on a classification (复核记录).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct CorrectionRow {
    pub case_id: String,
    pub case_no: String,
    pub channel: String,
    /// The words the model read (title and description).
    pub text: String,
    pub model_version: String,
    pub model_sub_item: String,
    pub model_urgency: String,
    pub model_request_type: String,
    pub model_confidence: f64,
    pub sub_item: String,
    pub urgency: String,
    pub request_type: String,
    pub corrected: bool,
    pub reviewer_subject: String,
    pub reviewer_name: String,
    pub note: String,
    pub decided_at: i64,
}

const CORRECTION_COLUMNS: &str = "case_id, case_no, channel, text, model_version, model_sub_item, model_urgency, model_request_type,
    model_confidence, sub_item, urgency, request_type, corrected, reviewer_subject, reviewer_name, note, decided_at";

pub async fn insert_correction(tx: &mut Tx, c: &CorrectionRow) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO corrections ({CORRECTION_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&c.case_id).bind(&c.case_no).bind(&c.channel).bind(&c.text).bind(&c.model_version).bind(&c.model_sub_item)
        .bind(&c.model_urgency).bind(&c.model_request_type).bind(c.model_confidence).bind(&c.sub_item).bind(&c.urgency)
        .bind(&c.request_type).bind(c.corrected).bind(&c.reviewer_subject).bind(&c.reviewer_name).bind(&c.note)
        .bind(c.decided_at)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The decision on one case, if a person made one.
pub async fn correction(db: &Db, case_id: &str) -> Result<Option<CorrectionRow>, Error> {
    let sql = format!("SELECT {CORRECTION_COLUMNS} FROM corrections WHERE case_id = $1");
    Ok(
        jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, CorrectionRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(case_id).fetch_optional(pool).await)?,
    )
}

/// Every decision made since `since`, the oldest first: what the next training run learns from.
pub async fn corrections_since(db: &Db, since: i64) -> Result<Vec<CorrectionRow>, Error> {
    let sql = format!("SELECT {CORRECTION_COLUMNS} FROM corrections WHERE decided_at >= $1 ORDER BY decided_at, case_id");
    Ok(
        jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, CorrectionRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(since).fetch_all(pool).await)?,
    )
}

// ------------------------------------------------------------------------------------ repeats

/// A case's mark as stored: what finds its repeats, and what lists it as a similar case.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MarkRow {
    pub case_id: String,
    pub case_no: String,
    pub channel: String,
    pub sub_item: String,
    pub citizen_key: String,
    pub street: String,
    pub community: String,
    pub grid: String,
    pub place: String,
    pub digest: String,
    pub title: String,
    pub at_ms: i64,
    pub first_case_id: String,
    pub first_case_no: String,
    /// Cases in its chain when it was recorded, itself included (1 when it repeats nothing).
    pub chain: i64,
    /// The case it was merged into, when it is a duplicate.
    pub duplicate_of: String,
}

impl MarkRow {
    pub fn mark(&self) -> Mark {
        Mark {
            case_id: self.case_id.clone(),
            case_no: self.case_no.clone(),
            channel: self.channel.clone(),
            sub_item: self.sub_item.clone(),
            citizen_key: self.citizen_key.clone(),
            community: self.community.clone(),
            place: self.place.clone(),
            digest: self.digest.clone(),
            at_ms: self.at_ms,
            first_case_id: self.first_case_id.clone(),
            first_case_no: self.first_case_no.clone(),
        }
    }
}

const MARK_COLUMNS: &str = "case_id, case_no, channel, sub_item, citizen_key, street, community, grid, place, digest, title, at_ms,
    first_case_id, first_case_no, chain, duplicate_of";

/// Records a case's mark; `false` if it was recorded before.
pub async fn insert_mark(tx: &mut Tx, m: &MarkRow) -> Result<bool, Error> {
    let sql = format!(
        "INSERT INTO case_marks ({MARK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (case_id) DO NOTHING"
    );
    let n = with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&m.case_id).bind(&m.case_no).bind(&m.channel).bind(&m.sub_item).bind(&m.citizen_key).bind(&m.street)
        .bind(&m.community).bind(&m.grid).bind(&m.place).bind(&m.digest).bind(&m.title).bind(m.at_ms)
        .bind(&m.first_case_id).bind(&m.first_case_no).bind(m.chain).bind(&m.duplicate_of)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The marks `now` may repeat: of its sub-item since `from`, from the same citizen or at the same
/// place, the latest first (a few of each suffice: the latest decides).
pub async fn earlier_marks(tx: &mut Tx, now: &Mark, from: i64) -> Result<Vec<Mark>, Error> {
    let sql = format!(
        "SELECT {MARK_COLUMNS} FROM case_marks
         WHERE sub_item = $1 AND at_ms >= $2 AND case_id <> $3 AND duplicate_of = ''
           AND (($4 <> '' AND citizen_key = $4) OR ($5 <> '' AND $6 <> '' AND community = $5 AND place = $6))
         ORDER BY at_ms DESC LIMIT 20"
    );
    let rows = with_tx!(tx, conn => sqlx::query_as::<_, MarkRow>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&now.sub_item).bind(from).bind(&now.case_id).bind(&now.citizen_key).bind(&now.community).bind(&now.place)
        .fetch_all(conn).await)?;
    Ok(rows.iter().map(MarkRow::mark).collect())
}

/// How many cases the chain begun by `first_case_id` holds (duplicates not counted).
pub async fn chain_length(tx: &mut Tx, first_case_id: &str) -> Result<i64, Error> {
    let (n,) = with_tx!(tx, conn => sqlx::query_as::<_, (i64,)>(
        "SELECT COUNT(*) FROM case_marks WHERE first_case_id = $1 AND duplicate_of = ''")
        .bind(first_case_id).fetch_one(conn).await)?;
    Ok(n)
}

pub async fn mark_of(db: &Db, case_id: &str) -> Result<Option<MarkRow>, Error> {
    let sql = format!("SELECT {MARK_COLUMNS} FROM case_marks WHERE case_id = $1");
    Ok(
        jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, MarkRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(case_id).fetch_optional(pool).await)?,
    )
}

/// Cases of `sub_item` in `community` since `from` (not merged duplicates), those of `grid` first,
/// then the latest.
pub async fn similar(db: &Db, sub_item: &str, community: &str, grid: &str, from: i64, limit: u32) -> Result<Vec<MarkRow>, Error> {
    let sql = format!(
        "SELECT {MARK_COLUMNS} FROM case_marks
         WHERE sub_item = $1 AND community = $2 AND at_ms >= $3 AND duplicate_of = ''
         ORDER BY CASE WHEN $4 <> '' AND grid = $4 THEN 0 ELSE 1 END, at_ms DESC LIMIT $5"
    );
    Ok(jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, MarkRow>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(sub_item).bind(community).bind(from).bind(grid).bind(i64::from(limit)).fetch_all(pool).await)?)
}

/// Where cases are counted for hot spots: a community, or a grid (网格) within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot<'a> {
    Community(&'a str),
    Grid(&'a str),
}

impl Spot<'_> {
    fn column(self) -> &'static str {
        match self {
            Spot::Community(_) => "community",
            Spot::Grid(_) => "grid",
        }
    }

    fn code(self) -> String {
        match self {
            Spot::Community(c) | Spot::Grid(c) => c.to_string(),
        }
    }
}

/// The cases of `sub_item` at `spot` decided in [`from`, `to`) (duplicates left out), the latest first.
pub async fn area_cases(tx: &mut Tx, sub_item: &str, spot: Spot<'_>, from: i64, to: i64) -> Result<Vec<String>, Error> {
    let sql = format!(
        "SELECT case_id FROM case_marks WHERE sub_item = $1 AND {} = $2 AND at_ms >= $3 AND at_ms < $4 AND duplicate_of = ''
         ORDER BY at_ms DESC, case_id",
        spot.column()
    );
    let rows = with_tx!(tx, conn => sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(sub_item).bind(spot.code()).bind(from).bind(to).fetch_all(conn).await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How many cases of `sub_item` at `spot` were decided in [`from`, `to`) (duplicates left out).
pub async fn count_area_cases(tx: &mut Tx, sub_item: &str, spot: Spot<'_>, from: i64, to: i64) -> Result<i64, Error> {
    let sql = format!(
        "SELECT COUNT(*) FROM case_marks WHERE sub_item = $1 AND {} = $2 AND at_ms >= $3 AND at_ms < $4 AND duplicate_of = ''",
        spot.column()
    );
    let (n,) = with_tx!(tx, conn => sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(sub_item).bind(spot.code()).bind(from).bind(to).fetch_one(conn).await)?;
    Ok(n)
}

/// Whether a hot spot of `sub_item` at `spot` was raised since `since` (a community's hot spots
/// and its grids' are apart).
pub async fn raised_since(tx: &mut Tx, sub_item: &str, spot: Spot<'_>, since: i64) -> Result<bool, Error> {
    let sql = match spot {
        Spot::Community(_) => {
            "SELECT hotspot_id FROM hotspots WHERE sub_item = $1 AND community = $2 AND grid = '' AND raised_at >= $3 LIMIT 1"
        }
        Spot::Grid(_) => "SELECT hotspot_id FROM hotspots WHERE sub_item = $1 AND grid = $2 AND raised_at >= $3 LIMIT 1",
    };
    let row = with_tx!(tx, conn => sqlx::query_as::<_, (String,)>(sql)
        .bind(sub_item).bind(spot.code()).bind(since).fetch_optional(conn).await)?;
    Ok(row.is_some())
}

/// A hot spot as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HotspotRow {
    pub hotspot_id: String,
    pub sub_item: String,
    pub street: String,
    pub community: String,
    /// The grid when the hot spot is one grid's; empty for the community's.
    pub grid: String,
    pub count: i64,
    pub baseline: f64,
    pub window_start: i64,
    pub raised_at: i64,
    /// JSON array of case ids.
    pub case_ids: String,
}

pub async fn insert_hotspot(tx: &mut Tx, h: &HotspotRow) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO hotspots (hotspot_id, sub_item, street, community, grid, count, baseline, window_start, raised_at, case_ids)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (hotspot_id) DO NOTHING")
        .bind(&h.hotspot_id).bind(&h.sub_item).bind(&h.street).bind(&h.community).bind(&h.grid).bind(h.count).bind(h.baseline)
        .bind(h.window_start).bind(h.raised_at).bind(&h.case_ids)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The hot spots raised since `since` (of `street`, or all when empty), the most cases first.
pub async fn hotspots(db: &Db, since: i64, street: &str) -> Result<Vec<HotspotRow>, Error> {
    let rows = jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, HotspotRow>(
        "SELECT hotspot_id, sub_item, street, community, grid, count, baseline, window_start, raised_at, case_ids FROM hotspots
         WHERE raised_at >= $1 AND ($2 = '' OR street = $2) ORDER BY count DESC, raised_at DESC LIMIT 200")
        .bind(since).bind(street).fetch_all(pool).await)?;
    Ok(rows)
}
