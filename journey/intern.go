package journey

import "strings"

// intern gives the state its own copy of an event's word (a type, a
// channel), the program's constant for a common one. A string taken from an
// event as it is keeps the event's whole string block alive (Compact gives
// id, type, channel, actor and text one allocation): once the timeline held
// events encoded, that was a customer's latest text in memory twice.
func intern(s string) string {
	switch s {
	case "":
		return ""
	case "chat":
		return "chat"
	case "sms":
		return "sms"
	case ChannelEmail:
		return ChannelEmail
	case "voice":
		return "voice"
	case "web":
		return "web"
	case "whatsapp":
		return "whatsapp"
	case TypeMessageReceived:
		return TypeMessageReceived
	case TypeMessageSent:
		return TypeMessageSent
	case TypeMessageDelivered:
		return TypeMessageDelivered
	case TypeMessageFailed:
		return TypeMessageFailed
	case TypeProfileUpdated:
		return TypeProfileUpdated
	case TypeIdentityLinked:
		return TypeIdentityLinked
	case TypeProactiveSent:
		return TypeProactiveSent
	case TypeAIReplied:
		return TypeAIReplied
	case TypeConversationOpened:
		return TypeConversationOpened
	case TypeConversationClosed:
		return TypeConversationClosed
	}
	return strings.Clone(s)
}
