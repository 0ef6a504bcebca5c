/**
 * A KubeConfig whose API clients reuse keep-alive HTTPS connections. @kubernetes/client-node
 * 1.x builds a new https.Agent for every API call, so every status write and Lease renewal
 * paid a TCP connect and a TLS handshake (a burst of 1,000 status writes spent ~2 s of CPU
 * on handshakes). Here the agent client-node built is swapped for a pooled keep-alive one
 * made from the same TLS options (CA, client certificate and key, server name, verify);
 * new options (a rotated client certificate) get a new agent. Proxy agents are left alone.
 * Watches take another path in client-node and keep their own connections.
 */
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

export class PooledKubeConfig extends KubeConfig {
  private readonly agents = new Map<string, https.Agent>();
  /** agents made (one per distinct TLS options) */
  agentsMade = 0;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const agent = context.getAgent();
    if (!agent || agent.constructor !== https.Agent) return;
    const o = (agent as https.Agent).options;
    const key = JSON.stringify(
      [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) =>
        v === undefined ? null : String(v),
      ),
    );
    let pooled = this.agents.get(key);
    if (!pooled) {
      if (this.agents.size >= 4) this.close();
      pooled = new https.Agent({ ...o, keepAlive: true, maxSockets: 16 });
      this.agents.set(key, pooled);
      this.agentsMade++;
    }
    context.setAgent(pooled);
  }

  /** Close the pooled connections. */
  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}
