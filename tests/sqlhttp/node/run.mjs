// Test-only: runs a batch of queries through the official @clickhouse/client against the
// otelspend SQL endpoint. Reads one JSON job on stdin, prints one JSON answer on stdout:
//   {"url": ..., "username": ..., "password": ..., "compression": true|false,
//    "ping": true, "queries": [{"query": ..., "format": "JSONEachRow", "query_params": {...},
//    "clickhouse_settings": {...}, "method": "query" | "command" | "exec"}]}
// -> {"ping": {...}, "results": [{"rows": [...], "query_id": ...} | {"error": {code, type, message}}]}
import { createClient } from '@clickhouse/client'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const job = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const client = createClient({
  url: job.url,
  username: job.username,
  password: job.password,
  compression: { response: Boolean(job.compression), request: Boolean(job.compression) },
  request_timeout: 60_000,
})

function failure(err) {
  return { error: { code: err.code ?? null, type: err.type ?? null, message: String(err.message ?? err) } }
}

const answer = { results: [] }
if (job.ping) {
  const ping = await client.ping()
  answer.ping = ping.success ? { success: true } : { success: false, ...failure(ping.error) }
}
for (const q of job.queries ?? []) {
  try {
    if (q.method === 'command') {
      const res = await client.command({ query: q.query, clickhouse_settings: q.clickhouse_settings })
      answer.results.push({ query_id: res.query_id, summary: res.summary ?? null })
    } else if (q.method === 'exec') {
      const res = await client.exec({ query: q.query, clickhouse_settings: q.clickhouse_settings })
      const parts = []
      for await (const part of res.stream) parts.push(part)
      answer.results.push({ query_id: res.query_id, text: Buffer.concat(parts).toString('utf8') })
    } else {
      const rs = await client.query({
        query: q.query,
        format: q.format ?? 'JSONEachRow',
        query_params: q.query_params,
        clickhouse_settings: q.clickhouse_settings,
      })
      const rows = q.format === 'CSVWithNames' || q.format === 'TabSeparatedWithNames' ? await rs.text() : await rs.json()
      answer.results.push({ query_id: rs.query_id, rows, headers: rs.response_headers })
    }
  } catch (err) {
    answer.results.push(failure(err))
  }
}
await client.close()
process.stdout.write(JSON.stringify(answer))
