/**
 * What the HTTP boot server asks the control layer for `GET /boot/<mac>.ipxe` (implemented
 * by src/control's BootControl). Mechanism (parsing the URL, headers, keep-alive) stays in
 * services/http; which script a machine gets is decided behind this interface.
 */
export interface ScriptSource {
  /**
   * The iPXE script for `mac` (lower-case colon form, already validated), requested from
   * `clientIp` (IPv4 dotted quad, or the IPv6 text when the request came over IPv6). Called once
   * per script request, including each retry of a waiting machine. Rejects with a DisklessError
   * CONTROL_UNKNOWN_NODE when the machine gets no script (answered 404); any other rejection
   * is answered 500 and logged.
   */
  scriptFor(mac: string, clientIp: string): Promise<string>;
}
