/**
 * The functions analyst SQL may call: pure computations over the values a query reads. Anything
 * that reaches outside the query's own rows is absent on purpose: files (`file`), dictionaries
 * (`dictGet*`, `joinGet`), the server and its settings (`getSetting`, `getServerSetting`,
 * `hostName`, `version`, `uptime`, `currentUser`, `currentDatabase`, `getMacro`,
 * `filesystemAvailable`, `showCertificate`, `hasColumnInTable`), the process (introspection such
 * as `addressToSymbol`), models (`catboostEvaluate`, `naiveBayesClassifier`), time-wasting
 * (`sleep`), `globalIn` (cluster-wide) and ClickHouse's internal `__`-functions. A function not
 * listed is refused, so a new engine version cannot add a reachable one by surprise.
 *
 * Names compare case-insensitively (the engine accepts `COUNT`, `Lower`…); a ClickHouse function
 * name never differs from another only by case.
 */
const SCALAR = `
  plus minus multiply divide intDiv intDivOrZero modulo moduloOrZero positiveModulo negate abs
  equals notEquals less greater lessOrEquals greaterOrEquals and or not xor
  if multiIf in notIn nullIn notNullIn like notLike ilike notILike match
  isNull isNotNull isZeroOrNull coalesce ifNull nullIf assumeNotNull toNullable
  tuple tupleElement untuple array arrayElement map lambda exists
  CAST _CAST accurateCast accurateCastOrNull accurateCastOrDefault
  toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth toIntervalQuarter toIntervalYear
  toIntervalMillisecond toIntervalMicrosecond toIntervalNanosecond
  toInt8 toInt16 toInt32 toInt64 toInt128 toInt256 toUInt8 toUInt16 toUInt32 toUInt64 toUInt128 toUInt256
  toFloat32 toFloat64 toDecimal32 toDecimal64 toDecimal128 toDecimal256 toString toFixedString toBool toUUID
  toDate toDate32 toDateTime toDateTime64 toTime toLowCardinality toTypeName toDecimalString
  parseDateTimeBestEffort parseDateTime64BestEffort parseDateTimeBestEffortUS parseDateTime parseDateTime64
  toUnixTimestamp toUnixTimestamp64Milli toUnixTimestamp64Micro toUnixTimestamp64Nano
  fromUnixTimestamp fromUnixTimestamp64Milli fromUnixTimestamp64Micro fromUnixTimestamp64Nano
  now now64 today yesterday toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond
  toMillisecond toStartOfYear toStartOfQuarter toStartOfMonth toStartOfWeek toMonday toStartOfDay toStartOfHour
  toStartOfMinute toStartOfSecond toStartOfFiveMinutes toStartOfTenMinutes toStartOfFifteenMinutes toStartOfInterval
  toTimeZone toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss toISOWeek toISOYear toWeek toYearWeek toLastDayOfMonth
  toRelativeSecondNum toRelativeMinuteNum toRelativeHourNum toRelativeDayNum toRelativeWeekNum toRelativeMonthNum
  dateDiff date_diff age dateTrunc date_trunc dateName timeSlot
  addSeconds addMinutes addHours addDays addWeeks addMonths addQuarters addYears addMilliseconds addMicroseconds
  subtractSeconds subtractMinutes subtractHours subtractDays subtractWeeks subtractMonths subtractQuarters subtractYears
  formatDateTime formatDateTimeInJodaSyntax makeDate makeDate32 makeDateTime makeDateTime64
  length lengthUTF8 char_length empty notEmpty lower upper lowerUTF8 upperUTF8 reverse reverseUTF8 concat
  concatWithSeparator substring substr substringUTF8 left right leftUTF8 rightUTF8 trim trimBoth trimLeft trimRight
  ltrim rtrim leftPad rightPad lpad rpad repeat format startsWith endsWith position locate positionCaseInsensitive
  positionUTF8 positionCaseInsensitiveUTF8 extract extractAll extractAllGroups extractAllGroupsHorizontal
  extractAllGroupsVertical replaceOne replaceAll replace replaceRegexpOne replaceRegexpAll regexpExtract
  splitByChar splitByString splitByRegexp splitByWhitespace arrayStringConcat multiSearchAny multiSearchFirstIndex
  multiSearchAllPositions multiMatchAny countSubstrings countSubstringsCaseInsensitive countMatches
  base64Encode base64Decode tryBase64Decode hex unhex toValidUTF8 initcap initcapUTF8 ascii
  cityHash64 sipHash64 sipHash128 MD5 SHA1 SHA224 SHA256 SHA512 xxHash32 xxHash64 xxh3 murmurHash3_32 murmurHash3_64
  halfMD5 farmHash64 crc32
  round roundBankers floor ceil ceiling trunc truncate sqrt cbrt exp exp2 exp10 log ln log2 log10 pow power
  greatest least sign e pi isFinite isNaN isInfinite
  bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitCount
  has hasAll hasAny hasSubstr indexOf countEqual arrayConcat arraySlice arraySort arrayReverseSort arrayDistinct
  arrayUniq arrayJoin arrayMap arrayFilter arrayExists arrayAll arrayCount arraySum arrayAvg arrayMin arrayMax
  arrayFirst arrayLast arrayFirstIndex arrayLastIndex arrayReduce arrayEnumerate arrayEnumerateUniq arrayZip
  arrayFlatten flatten arrayCompact arrayPushBack arrayPushFront arrayPopBack arrayPopFront range arrayIntersect
  arrayResize arrayReverse arrayCumSum arrayDifference arraySplit arrayShuffle arrayPartialSort emptyArrayString
  mapKeys mapValues mapContains mapFilter mapApply mapFromArrays tupleNames
  JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat JSONExtractBool JSONExtractRaw
  JSONExtractArrayRaw JSONExtractKeys JSONExtractKeysAndValues JSONExtractKeysAndValuesRaw JSONHas JSONLength
  JSONType JSON_VALUE JSON_QUERY JSON_EXISTS isValidJSON toJSONString
  simpleJSONExtractString simpleJSONExtractInt simpleJSONExtractUInt simpleJSONExtractFloat simpleJSONExtractBool
  simpleJSONExtractRaw simpleJSONHas
  IPv4NumToString IPv4StringToNum toIPv4 toIPv6 IPv6NumToString IPv6StringToNum isIPAddressInRange isIPv4String
  isIPv6String domain domainWithoutWWW protocol path cutQueryString extractURLParameter topLevelDomain
  generateUUIDv4 UUIDStringToNum UUIDNumToString rand rand32 rand64 randCanonical
  formatReadableSize formatReadableQuantity formatReadableTimeDelta materialize identity
`;

const AGGREGATE = `
  count sum avg min max any anyLast anyHeavy any_value argMin argMax uniq uniqExact uniqCombined uniqCombined64
  uniqHLL12 groupArray groupUniqArray groupArraySample groupArraySorted groupConcat topK topKWeighted
  quantile quantiles quantileExact quantilesExact quantileTiming quantileTDigest quantilesTDigest median medianExact
  varPop varSamp stddevPop stddevSamp corr covarPop covarSamp sumWithOverflow
  groupBitAnd groupBitOr groupBitXor first_value last_value histogram singleValueOrNull avgWeighted
  retention windowFunnel sequenceMatch sequenceCount entropy simpleLinearRegression countDistinct
`;

const WINDOW = 'row_number rank dense_rank percent_rank cume_dist ntile lagInFrame leadInFrame lag lead nth_value';

/** Table functions that generate rows and read nothing. */
const TABLE = 'numbers numbers_mt zeros zeros_mt generateSeries generate_series values';

/** Aggregate combinators (`sumIf`, `uniqExactState`, …): they change how an aggregate runs, never what it reads. */
const COMBINATORS = ['If', 'Array', 'Map', 'State', 'SimpleState', 'Merge', 'MergeState', 'ForEach', 'Distinct', 'OrDefault', 'OrNull', 'Resample', 'ArgMin', 'ArgMax', 'Null', 'Tuple'];

const lowerSet = (text: string) => new Set(text.split(/\s+/).filter(Boolean).map((n) => n.toLowerCase()));
const scalar = lowerSet(SCALAR);
const aggregate = lowerSet(AGGREGATE + ' ' + WINDOW);
const table = lowerSet(TABLE);

/** Whether a scalar, aggregate or window function may be called. */
export function isAllowedFunction(name: string): boolean {
  const n = name.toLowerCase();
  if (scalar.has(n) || aggregate.has(n)) return true;
  // Conversions have -OrZero / -OrNull / -OrDefault variants that only change error handling.
  const conversion = /^(.+?)(orzero|ornull|ordefault)$/.exec(n);
  if (conversion !== null && scalar.has(conversion[1]!)) return true;
  return isCombined(name);
}

/** Whether an aggregate function (with its combinators) may run: what `arrayReduce` may name. */
export function isAllowedAggregate(name: string): boolean {
  return aggregate.has(name.toLowerCase()) || isCombined(name);
}

function isCombined(name: string): boolean {
  for (const c of COMBINATORS) {
    if (name.length > c.length && name.toLowerCase().endsWith(c.toLowerCase())) {
      const base = name.slice(0, -c.length);
      if (aggregate.has(base.toLowerCase()) || isCombined(base)) return true;
    }
  }
  return false;
}

/** Whether a table function may be used in FROM. */
export function isAllowedTableFunction(name: string): boolean {
  return table.has(name.toLowerCase());
}

/** Names the parser produces itself (`EXISTS`, `x -> …`, `count(DISTINCT …)`) that the engine does not list. */
export const PARSER_FUNCTIONS = ['untuple', 'lambda', 'exists', 'countDistinct'];

/** Every listed name, for the test that checks each one exists in the engine. */
export function listedFunctions(): { functions: string[]; tableFunctions: string[] } {
  const words = (t: string) => t.split(/\s+/).filter(Boolean);
  return { functions: words(SCALAR + AGGREGATE + WINDOW), tableFunctions: words(TABLE) };
}
