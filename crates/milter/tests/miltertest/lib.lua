-- Helpers for the miltertest scripts (run by tests/it/miltertest.rs).
-- Globals from the command line: port (the milter's TCP port), corpus (mail-bench).

function check(ok, what)
  if not ok then error(what, 2) end
end

function expect_reply(conn, want, what)
  local got = mt.getreply(conn)
  if got ~= want then
    error(string.format("%s: reply '%s', expected '%s'", what, string.char(got), string.char(want)), 2)
  end
end

function open()
  local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 50, 0.1)
  check(conn ~= nil, "cannot connect to the milter on port " .. port)
  return conn
end

-- The mail-bench case on line n+1 of cases.jsonl: ip, helo, mail_from, file.
function case(n)
  local i = 0
  for line in io.lines(corpus .. "/cases.jsonl") do
    if i == n then
      local c = {}
      for _, k in ipairs({"file", "ip", "helo", "mail_from"}) do
        c[k] = string.match(line, '"' .. k .. '": "([^"]*)"')
      end
      return c
    end
    i = i + 1
  end
  error("no case " .. n)
end

function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Sends the header fields of a CRLF message as Postfix does (the value after the colon,
-- folded lines joined by LF), then EOH, then the body in chunks. One space after the
-- colon is left out: miltertest puts it back itself when the filter asked for
-- SMFIP_HDR_LEADSPC, as an MTA would. Errors on any refusal.
function send_message(conn, text, extra_header)
  local split = string.find(text, "\r\n\r\n", 1, true)
  local head = string.sub(text, 1, split + 1)
  local body = string.sub(text, split + 4)
  local fields = {}
  if extra_header ~= nil then table.insert(fields, extra_header) end
  for line in string.gmatch(head, "([^\n]*)\n") do
    line = string.gsub(line, "\r$", "")
    if string.match(line, "^[ \t]") then
      fields[#fields][2] = fields[#fields][2] .. "\n" .. line
    elseif line ~= "" then
      local name, value = string.match(line, "^([^:]+):(.*)$")
      table.insert(fields, {name, value})
    end
  end
  for _, f in ipairs(fields) do
    local value = string.gsub(f[2], "^ ", "")
    check(mt.header(conn, f[1], value) == nil, "header " .. f[1])
  end
  check(mt.eoh(conn) == nil, "eoh")
  expect_reply(conn, SMFIR_CONTINUE, "eoh")
  local at = 1
  while at <= #body do
    check(mt.bodystring(conn, string.sub(body, at, at + 65534)) == nil, "body")
    at = at + 65535
  end
  check(mt.eom(conn) == nil, "eom")
end

-- Connection information, HELO, queue id, MAIL and RCPT for case c.
function envelope(conn, c, queue_id)
  check(mt.conninfo(conn, "[" .. c.ip .. "]", c.ip) == nil, "conninfo")
  expect_reply(conn, SMFIR_CONTINUE, "conninfo")
  check(mt.helo(conn, c.helo) == nil, "helo")
  mt.macro(conn, SMFIC_MAIL, "i", queue_id, "{mail_addr}", c.mail_from)
  check(mt.mailfrom(conn, "<" .. c.mail_from .. ">") == nil, "mailfrom")
  expect_reply(conn, SMFIR_CONTINUE, "mailfrom")
  check(mt.rcptto(conn, "<user@receiver.example>") == nil, "rcptto")
end
