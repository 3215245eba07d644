-- Protocol paths: exempt loopback, abort then a second message, a forged field deleted,
-- a session that ends before MAIL FROM, a client without an address.
dofile(libdir .. "/lib.lua")

-- Loopback is exempt: accepted at connect.
local conn = open()
check(mt.conninfo(conn, "localhost", "127.0.0.1") == nil, "conninfo")
expect_reply(conn, SMFIR_ACCEPT, "loopback conninfo")
mt.disconnect(conn)

-- A message abandoned (RSET), then one carrying a field that claims our authserv-id.
conn = open()
local c = case(0)
envelope(conn, c, "MT0004")
check(mt.abort(conn) == nil, "abort")
mt.macro(conn, SMFIC_MAIL, "i", "MT0005")
check(mt.mailfrom(conn, "<" .. c.mail_from .. ">") == nil, "second mailfrom")
expect_reply(conn, SMFIR_CONTINUE, "second mailfrom")
check(mt.rcptto(conn, "<user@receiver.example>") == nil, "second rcptto")
local forged = {"Authentication-Results", " mx.receiver.example; dmarc=pass header.from=brand4.example"}
send_message(conn, read(corpus .. "/" .. c.file), forged)
expect_reply(conn, SMFIR_ACCEPT, "eom")
check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"), "forged field deleted")
check(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"), "ours inserted")
mt.disconnect(conn)

-- HELO, then the client goes away: nothing to say, no error.
conn = open()
check(mt.conninfo(conn, "[192.0.2.9]", "192.0.2.9") == nil, "conninfo")
expect_reply(conn, SMFIR_CONTINUE, "conninfo")
check(mt.helo(conn, "mail.example.org") == nil, "helo")
mt.disconnect(conn)

-- No client address (an "unspec" family): not verified, accepted at MAIL FROM.
conn = open()
check(mt.conninfo(conn, "localhost", "unspec") == nil, "conninfo unspec")
expect_reply(conn, SMFIR_CONTINUE, "conninfo unspec")
check(mt.mailfrom(conn, "<a@example.org>") == nil, "mailfrom")
expect_reply(conn, SMFIR_ACCEPT, "mailfrom without a client address")
mt.disconnect(conn)
