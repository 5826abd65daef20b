"""Timestream's function names, and the few the embedded AWS spells differently in DuckDB.

A query may only call a function Timestream has (its SQL reference: aggregate, window,
math, string, date/time, array, conditional and time-series functions). Anything else,
DuckDB's own (``list_value``, ``read_csv``, ``glob``, ``current_setting``...) included,
is refused before DuckDB sees the query. ``REWRITES`` turns the Timestream-only ones into
DuckDB expressions; the rest go through sqlglot's Presto -> DuckDB translation.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

_AGGREGATE = """
arbitrary approx_distinct approx_percentile array_agg avg bitwise_and_agg bitwise_or_agg
bool_and bool_or checksum corr count count_if covar_pop covar_samp every geometric_mean
histogram kurtosis map_agg max max_by min min_by regr_intercept regr_slope skewness stddev
stddev_pop stddev_samp sum var_pop var_samp variance
"""
_WINDOW = """
cume_dist dense_rank first_value lag last_value lead nth_value ntile percent_rank rank
row_number
"""
_MATH = """
abs acos asin atan atan2 cbrt ceil ceiling cos cosh degrees e exp floor from_base
infinity is_finite is_infinite is_nan ln log log10 log2 mod nan pi pow power radians rand
random round sign sin sqrt tan tanh to_base truncate width_bucket bitwise_and bitwise_or
bitwise_xor bitwise_not greatest least
"""
_STRING = """
chr codepoint concat length levenshtein_distance lower lpad ltrim position replace reverse
rpad rtrim split split_part starts_with strpos substr substring trim upper regexp_extract
regexp_extract_all regexp_like regexp_replace regexp_split to_utf8 from_utf8 url_extract_host
url_extract_path url_extract_query md5 sha1 sha256 sha512 to_hex from_hex
"""
_DATETIME = """
ago bin current_date current_time current_timestamp current_timezone date date_add
date_diff date_format date_parse date_trunc day day_of_month day_of_week day_of_year dow doy
extract format_datetime from_iso8601_date from_iso8601_timestamp from_milliseconds
from_nanoseconds from_unixtime hour human_readable_seconds last_day_of_month localtime
localtimestamp millisecond minute month now parse_datetime parse_duration quarter second
to_iso8601 to_milliseconds to_nanoseconds to_unixtime week week_of_year year year_of_week yow
"""
_OTHER = """
cast try_cast try coalesce if nullif typeof format array_distinct array_intersect
array_union array_except array_join array_max array_min array_position array_remove
array_sort arrays_overlap cardinality concat_ws contains element_at filter flatten
reduce repeat sequence shuffle slice transform zip zip_with map map_keys map_values
json_extract json_extract_scalar json_array_length json_format json_parse json_size
create_time_series interpolate_linear interpolate_spline_cubic interpolate_locf
interpolate_fill derivative_linear integral_trapezoidal_linear cumulative_sum_ratio
unnest
"""
TIMESTREAM_FUNCTIONS = frozenset(
    " ".join([_AGGREGATE, _WINDOW, _MATH, _STRING, _DATETIME, _OTHER]).split()
)


def _ts_utc_now() -> exp.Expr:
    return exp.cast(exp.CurrentTimestamp(), "timestamp")


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _bigint(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "bigint")


REWRITES: dict[str, Callable[[list[exp.Expr]], exp.Expr]] = {
    "ago": lambda a: exp.Sub(this=_ts_utc_now(), expression=a[0]),
    "bin": lambda a: _call(
        "time_bucket", a[1], a[0], exp.cast(exp.Literal.string("1970-01-01"), "timestamp")
    ),
    "to_milliseconds": lambda a: _call("epoch_ms", *a),
    "to_nanoseconds": lambda a: _call("epoch_ns", *a),
    "from_milliseconds": lambda a: _call(
        "make_timestamp", exp.Mul(this=_bigint(a[0]), expression=exp.Literal.number(1000))
    ),
    "from_nanoseconds": lambda a: _call(
        "make_timestamp", exp.IntDiv(this=_bigint(a[0]), expression=exp.Literal.number(1000))
    ),
    "to_iso8601": lambda a: _call("strftime", a[0], exp.Literal.string("%Y-%m-%dT%H:%M:%S.%fZ")),
}
