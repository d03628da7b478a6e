import { describe, expect, it } from "vitest";
import { isPrivateAddress, webhookUrlProblem } from "./webhook-url.js";

describe("webhook URLs", () => {
  it("takes public http(s) URLs", () => {
    expect(webhookUrlProblem("https://hooks.example.com/fulcrum?x=1", false)).toBeUndefined();
    expect(webhookUrlProblem("http://203.0.113.7:8080/hook", false)).toBeUndefined();
    expect(webhookUrlProblem("https://[2001:db8::1]/hook", false)).toBeUndefined();
  });

  it("refuses other schemes and credentials, whatever the setting", () => {
    for (const allow of [true, false]) {
      expect(webhookUrlProblem("ftp://example.com/x", allow)).toMatch(/http:\/\/ or https/);
      expect(webhookUrlProblem("file:///etc/passwd", allow)).toMatch(/http:\/\/ or https/);
      expect(webhookUrlProblem("https://u:p@example.com/", allow)).toMatch(/credentials/);
      expect(webhookUrlProblem("not a url", allow)).toMatch(/not a valid URL/);
    }
  });

  it("refuses loopback, private and internal hosts unless allowed", () => {
    for (const url of [
      "http://127.0.0.1:9000/",
      "http://localhost/",
      "http://api.localhost/",
      "http://10.1.2.3/",
      "http://172.20.0.1/",
      "http://192.168.1.1/",
      "http://169.254.169.254/latest/meta-data",
      "http://100.64.0.1/",
      "http://0.0.0.0/",
      "http://2130706433/", // 127.0.0.1 as a number
      "http://[::1]/",
      "http://[fd00::1]/",
      "http://[fe80::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://metadata.google.internal/",
      "http://redis/",
    ]) {
      expect(webhookUrlProblem(url, false), url).toMatch(/private or internal/);
      expect(webhookUrlProblem(url, true), url).toBeUndefined();
    }
  });

  it("classifies addresses", () => {
    expect(isPrivateAddress("8.8.8.8")).toBe(false);
    expect(isPrivateAddress("172.32.0.1")).toBe(false);
    expect(isPrivateAddress("2606:4700::1111")).toBe(false);
    expect(isPrivateAddress("::ffff:8.8.8.8")).toBe(false);
    expect(isPrivateAddress("127.0.0.53")).toBe(true);
    expect(isPrivateAddress("fc00::1")).toBe(true);
    expect(isPrivateAddress("example.com")).toBe(false);
  });
});
