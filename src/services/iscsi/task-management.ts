/**
 * Task management functions (RFC 7143 §11.5, SAM-5 §7) on one iSCSI session: ABORT TASK,
 * ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET and TARGET WARM/COLD RESET, reaching the
 * other sessions of the target where the function says so. Called by IscsiConnection for
 * each Task Management Request, in CmdSN order.
 */
import { TaskFunction, TaskResponse } from '../../wire/iscsi/iscsi-constants.js';
import type { TaskManagementRequest } from '../../wire/iscsi/iscsi-pdu.js';
import type { AscPair } from '../../wire/scsi/scsi-constants.js';
import type { LogicalUnit } from './logical-unit.js';
import { decodeLun } from './decode-lun.js';
import { UnitAttentionAsc } from './unit-attention.js';

/** One SCSI task of this session, from its command PDU to its status. */
export interface Task {
  readonly itt: number;
  readonly lun: number;
  aborted: boolean;
  /** The I/O in flight, awaited before an abort is reported complete. */
  running?: Promise<void>;
}

/** A session a reset or CLEAR TASK SET reaches (IscsiConnection). */
export interface TaskManagementPeer {
  /** Aborts the session's tasks on `lun` (every LUN when null), queuing `attention` when given; returns them. */
  clearTaskSet(lun: number | null, attention: AscPair | null): Task[];
  /** Sends what is queued, then closes (TARGET COLD RESET). */
  endAfterFlush(): void;
}

/** What task management needs from the session it runs on; IscsiConnection builds one per request. */
export interface TaskManagementSession {
  /** The session itself, as found among `peers()`. */
  readonly self: TaskManagementPeer;
  /** The logical unit of the session. */
  readonly unit: LogicalUnit;
  /** True once the connection is gone (no response is then sent). */
  isClosed(): boolean;
  /** The sessions logged in to the same target, this one included. */
  peers(): readonly TaskManagementPeer[];
  /** The running task with this ITT, if any. */
  task(itt: number): Task | undefined;
  /** Marks matching tasks aborted and returns them; matching held commands never run. */
  abortTasks(match: (t: Task) => boolean): Task[];
  /** ABORT TASK of a command that has not started; false when there is no such command. */
  abortNotStarted(pdu: TaskManagementRequest): boolean;
  /** Sends the Task Management Function Response. */
  sendResponse(response: number): void;
}

/**
 * Task management (§11.5, SAM-5 §7). Aborted tasks get no response; the TMF response goes
 * out once their I/O has finished, so nothing of theirs follows it. Resets and CLEAR TASK
 * SET reach every session logged in to the target and leave unit attentions behind.
 */
export function handleTaskManagement(session: TaskManagementSession, pdu: TaskManagementRequest): void {
  const answer = (response: number, after: readonly Task[] = []) => {
    const finish = () => session.sendResponse(response);
    const running = after.map((t) => t.running).filter((r): r is Promise<void> => r !== undefined);
    if (running.length === 0) return finish();
    void Promise.allSettled(running).then(() => {
      if (!session.isClosed()) finish();
    });
  };
  const unit = session.unit;
  const lun = decodeLun(pdu.lun);
  const fn = pdu.function;
  const peers = () => session.peers();
  switch (fn) {
    case TaskFunction.abortTask: {
      const task = session.task(pdu.referencedTaskTag);
      if (task) return answer(TaskResponse.functionComplete, session.abortTasks((t) => t === task));
      return answer(session.abortNotStarted(pdu) ? TaskResponse.functionComplete : TaskResponse.taskDoesNotExist);
    }
    case TaskFunction.abortTaskSet:
      if (lun !== unit.lun) return answer(TaskResponse.lunDoesNotExist);
      return answer(TaskResponse.functionComplete, session.abortTasks((t) => t.lun === lun));
    case TaskFunction.clearTaskSet: {
      if (lun !== unit.lun) return answer(TaskResponse.lunDoesNotExist);
      const aborted: Task[] = [];
      for (const peer of peers()) aborted.push(...peer.clearTaskSet(lun, peer === session.self ? null : UnitAttentionAsc.commandsClearedByAnotherInitiator));
      return answer(TaskResponse.functionComplete, aborted);
    }
    case TaskFunction.logicalUnitReset: {
      if (lun !== unit.lun) return answer(TaskResponse.lunDoesNotExist);
      const aborted: Task[] = [];
      for (const peer of peers()) aborted.push(...peer.clearTaskSet(lun, UnitAttentionAsc.busDeviceResetFunction));
      unit.reset(); // SPC-2 reservations do not survive a LUN reset (persistent ones do)
      return answer(TaskResponse.functionComplete, aborted);
    }
    case TaskFunction.targetWarmReset:
    case TaskFunction.targetColdReset: {
      const aborted: Task[] = [];
      for (const peer of peers()) aborted.push(...peer.clearTaskSet(null, UnitAttentionAsc.powerOnOrReset));
      unit.reset();
      answer(TaskResponse.functionComplete, aborted);
      // Cold reset also ends every connection to the target (§11.5.1), after this response.
      if (fn === TaskFunction.targetColdReset) {
        void Promise.allSettled(aborted.map((t) => t.running)).then(() => {
          for (const peer of peers()) peer.endAfterFlush();
        });
      }
      return;
    }
    case TaskFunction.taskReassign:
      return answer(TaskResponse.reassignmentNotSupported); // needs ErrorRecoveryLevel 2
    default:
      return answer(TaskResponse.functionNotSupported); // CLEAR ACA (no ACA support) and unknown functions
  }
}
