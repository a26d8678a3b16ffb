package ai

import "strings"

// lexiconByScore is the sentiment lexicon, AFINN-style: word valences from
// -4 to +4, written for customer-service text (words are lowercased, without
// apostrophes, unstemmed). Emoji are scored in emojiScores.
var lexiconByScore = map[float64]string{
	4: `outstanding superb fantastic brilliant exceptional phenomenal perfect
		wonderful flawless magnificent breathtaking lovely`,
	3: `amazing awesome excellent great love loved loving loves delighted
		impressive incredible marvelous terrific thrilled grateful ecstatic
		best beautiful fabulous superior stellar glad happy heroes hero`,
	2: `good nice pleased helpful thanks thank thankful appreciate appreciated
		satisfied enjoy enjoyed pleasant fast quick smooth easy kind friendly
		efficient reliable recommend recommended glad cool welcome
		resolved fixed solved works worked working success successful win
		won impressed comfortable convenient fair polite professional
		valuable useful clear safe secure trust trusted better well`,
	1: `ok okay alright sure yes liked decent improved improvement hope
		hopefully interested fine calm patient fun ready agree agreed support
		supported relief relieved favor accept accepted correct reasonable`,
	-1: `slow wait waiting waited confused confusing unclear issue issues
		problem problems difficult hard expensive pricey late delay delayed
		doubt doubtful unsure worried concern concerned mistake mistakes
		missing lost miss missed strange odd weird bored boring tired
		complicated unexpected unfortunately sadly
		lack lacking limited problematic uncertain inconvenient sorry`,
	-2: `bad poor wrong error errors fail failed fails failing failure broken
		unhappy sad annoyed annoying frustrated frustrating frustration
		disappointed disappointing disappointment upset unacceptable unfair
		rude useless worse declined decline denied refused refuse angry
		complain complaint complaints ignored ignore ignoring stuck
		incompetent unreliable unprofessional hate hated hates hassle pain
		painful stupid damaged damage overcharged charged broke crash crashed
		crashes nightmare mess messed ridiculous pathetic sucks sucked
		worried stressful stress stressed annoy angrily problem`,
	-3: `terrible awful horrible horrid furious outraged outrageous disgusting
		disgusted scam scammed fraud fraudulent stolen steal stole cheated
		cheat rip ripoff liar lied lies lying worst hopeless disaster
		unbelievable shameful shame appalling dreadful abysmal incompetence`,
	-4: `hell damn fuck fucking shit shitty crap crappy bullshit bastard`,
}

// emojiScores scores emoji (a variation selector after one is ignored).
var emojiScores = map[rune]float64{
	'😀': 2, '😃': 2, '😄': 2, '😁': 2, '🙂': 1, '😊': 2, '😍': 3, '🥰': 3, '😂': 2,
	'🤩': 3, '😎': 1, '👍': 2, '👌': 2, '👏': 2, '🙏': 1, '🎉': 3, '❤': 3, '💖': 3,
	'💯': 2, '✅': 1, '🥳': 3, '😇': 2, '😉': 1,
	'😡': -3, '😠': -3, '🤬': -4, '😞': -2, '😢': -2, '😭': -3, '👎': -2, '💩': -3,
	'😤': -2, '😒': -2, '🙁': -1, '☹': -2, '😩': -2, '😫': -2, '😖': -2, '😣': -2,
	'💔': -3, '😱': -2, '😔': -2, '😕': -1, '🤮': -3, '🤢': -2, '❌': -1, '🙄': -2,
}

// negations flip the valence of a sentiment word up to negationReach words after them.
var negations = setOf(`not no never none nothing nobody neither nor without hardly barely
	dont doesnt didnt isnt wasnt arent werent cant cannot couldnt wont wouldnt shouldnt
	havent hasnt hadnt aint nt`)

// intensifiers scale the next sentiment word (within intensifierReach words).
var intensifiers = map[string]float64{
	"very": 1.3, "really": 1.3, "extremely": 1.5, "so": 1.2, "super": 1.3, "totally": 1.3,
	"absolutely": 1.5, "completely": 1.4, "incredibly": 1.5, "utterly": 1.5, "truly": 1.3,
	"highly": 1.3, "too": 1.2, "most": 1.3, "especially": 1.3, "exceptionally": 1.5,
	"seriously": 1.3, "deeply": 1.3, "quite": 1.1, "such": 1.2, "way": 1.2,
	"slightly": 0.5, "somewhat": 0.6, "barely": 0.5, "kinda": 0.6,
	"little": 0.6, "bit": 0.6, "marginally": 0.5, "fairly": 0.8, "partly": 0.6,
}

// lexicon maps a word to its valence, built from lexiconByScore.
var lexicon = func() map[string]float64 {
	m := make(map[string]float64)
	for score, words := range lexiconByScore {
		for _, w := range strings.Fields(words) {
			if old, ok := m[w]; !ok || abs(score) > abs(old) {
				m[w] = score
			}
		}
	}
	return m
}()

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
