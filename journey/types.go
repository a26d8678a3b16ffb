package journey

// Event types the runtime records (PROTOCOL section 1). Clients cannot send
// them: every one is under a reserved prefix or is a reserved name.
const (
	TypeMessageReceived  = "message.received"
	TypeMessageSent      = "message.sent"
	TypeMessageDelivered = "message.delivered"
	TypeMessageFailed    = "message.failed"

	TypeAIReplied    = "ai.replied"
	TypeAIKBSearched = "ai.kb_searched"

	TypeRoutingDecided = "routing.decided"

	TypeConversationOpened = "journey.conversation_opened"
	TypeConversationClosed = "journey.conversation_closed"
	TypeCaseOpened         = "journey.case_opened"
	TypeCaseResolved       = "journey.case_resolved"
	TypeStageChanged       = "journey.stage_changed"
	TypeCallbackOffered    = "journey.callback_offered"
	TypeCallbackScheduled  = "journey.callback_scheduled"
	TypeTimerArmed         = "journey.timer_armed"
	TypeTimerCancelled     = "journey.timer_cancelled"
	TypeRuleFired          = "journey.rule_fired"

	TypeCustomerTagged = "customer.tagged"

	TypeProactiveSent       = "proactive.sent"
	TypeProactiveSuppressed = "proactive.suppressed"
	TypeProactiveHeld       = "proactive.held"

	TypeWorkflowStep = "workflow.step"

	TypeAgentOffered     = "agent.offered"
	TypeAgentAssigned    = "agent.assigned"
	TypeAgentTransferred = "agent.transferred"
	TypeAgentWrappedUp   = "agent.wrapped_up"
)

// Actors of runtime events besides customer and system; rules are
// "rule:<id>", agents "agent:<id>", workflows "workflow:<name>".
const (
	ActorAI             = "ai"
	ActorRulePrefix     = "rule:"
	ActorAgentPrefix    = "agent:"
	ActorWorkflowPrefix = "workflow:"
)

// Kinds of due work (DESIGN "Time"): each names an obligation the customer
// recorded with a due-work key; Ref says which one.
const (
	DueOutbound         = "outbound"          // Ref: the message.sent seq; redeliver or expire
	DueConversationIdle = "conversation.idle" // Ref: conversation id; close it when inactive
	DueRuleTimer        = "rule.timer"        // Ref: the journey.timer_armed seq; fire the rule
	DueProactiveRelease = "proactive.release" // Ref: the proactive.held seq; send it after quiet hours
	DueWorkflowExpire   = "workflow.expire"   // Ref: "<workflow>:<step>"; fail a step still waiting
)
